"""Leave-one-benchmark-out check of a labelling / training recipe (the experiments behind
models/train.py's choice of labels; results in models/README.md).

For each RouterBench training file and the LLMRouter one: train on all the *other* training
files, then score the held-out file's prompts and compute APGR (weak = mixtral-8x7b, strong =
gpt-4-1106-preview on RouterBench; llama-3.1-8b vs nemotron-51b on LLMRouter). Test splits are
never read. Usage (features as written by `tierwise features`, see train.sh):

  python lobo.py DATA_DIR FEATURE_DIR NAME '{"label": "alldiff", "params": {"num_leaves": 7}}'

label: gain (strong-vs-weak gain) | weakfail (1 - q_tier1) | alldiff (1 - mean of all models);
"demean": K centres labels within K k-means clusters; "quad": calibrate onto the gain with a
quadratic logistic fit (both need scikit-learn).
"""
import sys, json, numpy as np, lightgbm as lgb, pathlib
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import train as T
D = pathlib.Path(sys.argv[1]); F = pathlib.Path(sys.argv[2]); sys.argv = [sys.argv[0]] + sys.argv[3:]
prices = dict(T.PRICES); prices.update({m: v["input_usd_per_m"] for m, v in json.load(open(D/"llmrouter_prices.json")).items()})
names = sorted(p.stem for p in D.glob("*_train.jsonl"))
data = {}
for n in names:
    rows = T.load_jsonl(D/f"{n}.jsonl"); data[n] = (rows, T.load_features(F, n, rows))
def apgr(score, w, s):
    # minimal port of the contract
    edges = np.quantile(score, np.linspace(0,1,11))
    pts=[]
    for k,e in enumerate(edges):
        strong = score > e if k==10 else score >= e
        pts.append((strong.mean(), np.where(strong, s, w).mean()))
    pts.sort()
    x=np.array([p[0] for p in pts]); y=np.array([p[1] for p in pts])
    auc=np.trapezoid(y,x); return (auc-w.mean())/(s.mean()-w.mean())
mode = sys.argv[1] if len(sys.argv)>1 else "base"
params = dict(objective="cross_entropy", learning_rate=0.03, num_leaves=15, min_data_in_leaf=40, feature_fraction=0.3, bagging_fraction=0.8, bagging_freq=1, lambda_l2=5.0, seed=1, verbose=-1, num_threads=2, force_col_wise=True)
extra = json.loads(sys.argv[2]) if len(sys.argv)>2 else {}
params.update(extra.get("params", {}))
rounds = extra.get("rounds", 150)
emb_only = extra.get("emb_only", False); text_only = extra.get("text_only", False)
res = {}
for held in [n for n in names if n.startswith("routerbench")] + ["llmrouter_train"]:
    tr = [n for n in names if n != held]
    X=[];Y=[];G=[];GAIN=[]
    for n in tr:
        rows,Xn = data[n]; fam=T.family(n)
        fam_rows=[r for m in tr if T.family(m)==fam for r in data[m][0]]
        mem=T.tier_members(fam_rows, prices); L=T.labels(rows, mem)
        lab = extra.get("label","gain")
        if lab=="weakfail":
            L[:,0] = np.array([1-np.mean([r["scores"][m] for m in mem[1] if m in r["scores"]] or [np.nan]) for r in rows])
        elif lab=="alldiff":
            L[:,0] = np.array([1-np.mean(list(r["scores"].values())) for r in rows])
        ok=~np.isnan(L[:,0]); y=L[ok,0]
        if extra.get("demean"):
            # centre labels within pseudo-tasks (k-means on embeddings) so trees learn within-task ranking
            from sklearn.cluster import KMeans
            km=KMeans(n_clusters=extra["demean"], n_init=2, random_state=0).fit(Xn[ok][:, :384])
            for c in range(extra["demean"]):
                y[km.labels_==c] = y[km.labels_==c] - y[km.labels_==c].mean()
        X.append(Xn[ok]); Y.append(y); G+= [fam]*int(ok.sum()); GAIN.append(T.labels(rows, mem)[ok,0])
    X=np.vstack(X); Y=np.concatenate(Y); G=np.array(G)
    W=np.ones(len(X))
    for f in set(G): W[G==f]=len(X)/(len(set(G))*(G==f).sum())
    cols = slice(None)
    if emb_only: cols = slice(0,384)
    if text_only: cols = slice(384,None)
    if extra.get("demean"):
        params=dict(params, objective="regression")
    b = lgb.train(params, lgb.Dataset(X[:,cols], Y, weight=W), num_boost_round=rounds)
    rows, Xh = data[held]
    keep=[i for i,r in enumerate(rows) if len(r["scores"])>=9]; rows=[rows[i] for i in keep]; Xh=Xh[keep]
    sc = b.predict(Xh[:,cols], raw_score=True)
    if extra.get("quad"):
        from sklearn.linear_model import LogisticRegression
        g=np.nan_to_num(np.concatenate(GAIN)); r=b.predict(X[:,cols], raw_score=True)
        yy=np.concatenate([np.zeros(len(g)),np.ones(len(g))]); ww=np.concatenate([1-g,g])*np.concatenate([W,W])
        F=lambda r: np.column_stack([r, r*r])
        lr=LogisticRegression(C=100).fit(np.vstack([F(r),F(r)]), yy, sample_weight=ww)
        print("coef", lr.coef_, lr.intercept_)
        sc = lr.predict_proba(F(sc))[:,1]
    if held.startswith("routerbench"):
        w = np.array([r["scores"]["mistralai/mixtral-8x7b-chat"] for r in rows]); s=np.array([r["scores"]["gpt-4-1106-preview"] for r in rows])
    else:
        w = np.array([r["scores"]["llama-3.1-8b-instruct"] for r in rows]); s=np.array([r["scores"]["llama-3.1-nemotron-51b-instruct"] for r in rows])
    res[held.replace("_train","")] = round(apgr(sc,w,s),3)
print(mode, extra, res, "mean", round(np.mean(list(res.values())),3))
