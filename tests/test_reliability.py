"""Reliability: the process that hosts the embedded JVM must not crash at exit."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# What pytest's faulthandler plugin did to the test process: enable
# faulthandler before the JVM starts, disable it (restoring the pre-JVM
# SIGSEGV handler) while the JVM still runs. Without the guard in
# kg/embedded.py this script dies with SIGSEGV (exit 139) every time here:
# the JVM's safepoint polls and GC trap SIGSEGV on purpose.
_SCRIPT = textwrap.dedent("""
    import faulthandler, sys, tempfile
    from pathlib import Path
    faulthandler.enable()
    import jpype
    from v2ht_kg.kg.embedded import EmbeddedServer
    from v2ht_kg.kg.store import GraphStore
    with tempfile.TemporaryDirectory() as d:
        srv = EmbeddedServer(Path(d) / "store")
        srv.start()
        gs = GraphStore(srv.uri, (srv.user, srv.password), srv.database)
        gs.verify()
        gs.ensure_schema()
        faulthandler.disable()
        gs.load_hashtags([{"name": f"t{i}", "words": ["t"], "count": 1, "train_count": 1,
                           "longtail": True, "surfaces": []} for i in range(3000)], path="merge")
        for _ in range(30):
            gs.counts()
            jpype.java.lang.System.gc()
        gs.close()
        srv.stop()
    print("clean exit")
""")


def test_faulthandler_toggled_around_the_jvm_does_not_crash_the_process():
    p = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert p.stdout.strip().endswith("clean exit")


# --- the bad-input catalogue: one line naming the file/line or value, exit 2 --

import contextlib  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from cli_checks import one_line_error as _one_line_error

CLI = [sys.executable, "-m", "v2ht_kg.cli.app"]
POSTS = [{"id": f"p{i}", "user": f"u{i % 3}", "hashtags": ["love", "dance"], "text": "hi"} for i in range(6)]


def _jsonl(rows):
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _features(value, dtype=np.float32, row=3):
    a = np.zeros((len(POSTS), 2, 3), dtype=dtype)
    a[row, 1, 2] = value
    return a


# (case, files of the raw folder {name: bytes | array}, expected text in the error)
RAW_CASES = [
    ("jsonl non-UTF-8", {"posts.jsonl": _jsonl(POSTS[:2]) + b'{"id": "x", "hashtags": ["b\xff"]}\n'},
     "posts.jsonl:3: not UTF-8"),
    ("csv non-UTF-8", {"posts.csv": b"id,user,hashtags,text,time\n1,u,a,t,\n2,u,b,\xfe,\n"}, "posts.csv:3: not UTF-8"),
    ("mixed time types", {"posts.jsonl": _jsonl([{**POSTS[0], "time": "2020-01-01"}, {**POSTS[1], "time": 5}])},
     "posts.jsonl:2: 'time' is a number here but a string on line 1"),
    ("null id", {"posts.jsonl": _jsonl([{**POSTS[0], "id": None}])}, "posts.jsonl:1: 'id' must be"),
    ("object id", {"posts.jsonl": _jsonl([{**POSTS[0], "id": {"a": 1}}])}, "posts.jsonl:1: 'id' must be"),
    ("list user", {"posts.jsonl": _jsonl([{**POSTS[0], "user": ["u"]}])}, "posts.jsonl:1: 'user' must be"),
    ("csv row with one field", {"posts.csv": b"id,user,hashtags,text,time\n1,u,a,t,\n2\n"}, "posts.csv:3: 1 field(s)"),
    ("NaN feature", {"posts.jsonl": _jsonl(POSTS), "features/visual.npy": _features(np.nan)},
     "visual.npy: row 3 (post on line 4 of visual.ids.txt): value nan is not finite"),
    ("inf feature", {"posts.jsonl": _jsonl(POSTS), "features/visual.npy": _features(-np.inf, np.float16, 0)},
     "visual.npy: row 0 (post on line 1 of visual.ids.txt): value -inf is not finite"),
    ("float32 above float16 range", {"posts.jsonl": _jsonl(POSTS), "features/acoustic.npy": _features(1e6, row=5)},
     "acoustic.npy: row 5 (post on line 6 of acoustic.ids.txt): value 1000000.0 is outside float16's range"),
]


def _cli(*args, env=None):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})




@pytest.mark.parametrize("case,files,expected", RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_bad_raw_input_is_one_line(tmp_path, case, files, expected):
    raw = tmp_path / "raw"
    for name, content in files.items():
        path = raw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, np.ndarray):
            np.save(path, content)
            (path.parent / path.name.replace(".npy", ".ids.txt")).write_text("".join(p["id"] + "\n" for p in POSTS))
        else:
            path.write_bytes(content)
    fmt = "csv" if "posts.csv" in files else "jsonl"
    line = _one_line_error(_cli("data", "prepare", raw, "-f", fmt, "-w", tmp_path / "w", "--min-tag-count", "1",
                                "--min-user-posts", "1"))
    assert expected in line, line
    assert not (tmp_path / "w" / "data").exists()


DEEP = "[" * 50_000 + "]" * 50_000  # one argv string is at most 128 KiB
# (args after the command, expected text); {wd} is an empty work directory.
OPTION_CASES = [
    (["train", "--lr", "inf"], "--lr inf: must be a finite number above zero"),
    (["train", "--lr", "nan"], "--lr nan: must be a finite number above zero"),
    (["train", "--lr", "0"], "--lr 0.0: must be a finite number above zero"),
    (["train", "--valid-posts", "-5"], "--valid-posts -5: must be a positive integer"),
    (["train", "--d-hashtag", "-8"], "--d-hashtag -8: must be a positive integer"),
    (["train", "--device", "tpu"], "--device 'tpu'"),
    (["evaluate", "somerun", "--device", "tpu"], "--device 'tpu'"),
    (["recommend", "somerun", "--post", "p1", "-k", "0"], "-k 0: must be a positive integer"),
    (["data", "generate", "--seed", "-1", "-o", "{wd}/gen"], "--seed -1: must be between 0 and"),
    (["data", "prepare", "{wd}/raw", "-f", "jsonl", "--max-posts", "-5"], "--max-posts -5: must be a positive integer"),
    (["build", "{wd}/raw", "-f", "jsonl", "--min-tag-count", "-2"], "--min-tag-count -2: must not be negative"),
    (["build", "{wd}/raw", "-f", "jsonl", "--wup-threshold", "nan"], "--wup-threshold nan: must be between 0 and 1"),
    (["cypher", "RETURN $limit", "-p", "limit=NaN"], "--param limit=NaN: NaN and infinities"),
    (["cypher", "RETURN $x", "-p", "x=" + DEEP], "--param x: JSON value nested too deeply"),
]


@pytest.mark.parametrize("args,expected", OPTION_CASES, ids=[" ".join(a[:3])[:40] for a, _ in OPTION_CASES])
def test_bad_option_is_one_line(tmp_path, args, expected):
    wd = tmp_path / "w"
    args = [a.replace("{wd}", str(tmp_path)) for a in args]
    if args[0] != "data" or args[1] != "generate":
        args += ["-w", str(wd)]
    line = _one_line_error(_cli(*args))
    assert expected in line, line
    assert not (tmp_path / "gen").exists()


def test_config_file_with_a_non_string_uri_is_one_line(tmp_path):
    wd = tmp_path / "w"
    wd.mkdir()
    (wd / "v2ht.toml").write_text("[store]\nuri = 42\n", encoding="utf-8")
    line = _one_line_error(_cli("cypher", "RETURN 1", "-w", wd))
    # the section name survives the console's markup
    assert "v2ht.toml: [store] uri must be a string, not int (42)" in line, line


@pytest.mark.parametrize("config,expected", [
    ({"dataset_dir": "/nowhere", "data_fingerprint": "f", "model": {}}, "run config lacks 'modalities'"),
    ([1, 2], "run config is not a JSON object"),
    ({"dataset_dir": "/nowhere", "data_fingerprint": "f", "model": 3, "modalities": [], "max_text_tokens": 8,
      "seed": 0, "w2v_dim": 8, "w2v_epochs": 1}, "'model' is not an object"),
])
def test_broken_run_config_is_a_data_error(tmp_path, config, expected):
    from v2ht_kg.gnn.runs import load_run
    from v2ht_kg.kg.errors import DataError

    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(DataError, match=expected) as e:
        load_run(tmp_path)
    assert str(tmp_path / "config.json") in str(e.value)


# --- one writer per work directory; orphaned temporary folders go -------------

def _dead_pid():
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_second_build_on_a_locked_work_dir_is_one_line(tmp_path):
    from v2ht_kg.kg.workdir import Workdir

    w = Workdir.resolve(tmp_path / "w")
    with w.exclusive("build"):
        line = _one_line_error(_cli("build", "--format", "synthetic", "--preset", "tiny", "-w", w.root))
        assert "another build (pid" in line and ".build.lock" in line, line
        line = _one_line_error(_cli("data", "prepare", "-f", "synthetic", "--preset", "tiny", "-w", w.root))
        assert "another build" in line, line
    assert not w.data.exists()
    # released: the next writer gets it
    with w.exclusive("build"):
        pass


def test_lock_taken_inside_one_process_twice_is_refused(tmp_path):
    from v2ht_kg.kg.errors import V2HTError
    from v2ht_kg.kg.workdir import Workdir

    w = Workdir.resolve(tmp_path / "w")
    with w.exclusive("build"):
        with pytest.raises(V2HTError, match="another build"):
            with w.exclusive("data prepare"):
                pass


def test_orphaned_tmp_folders_of_dead_processes_are_removed(tmp_path):
    from v2ht_kg.kg.workdir import Workdir

    w = Workdir.resolve(tmp_path / "w").ensure()
    dead = w.root / f"data.tmp-{_dead_pid()}"
    (dead / "features").mkdir(parents=True)
    (dead / "posts.jsonl").write_text("x\n")
    alive = w.root / f"data.tmp-{os.getppid()}"  # a live process (pytest's parent)
    alive.mkdir()
    keep = w.root / "data"
    keep.mkdir()
    with w.exclusive("build"):
        assert not dead.exists()
        assert alive.exists() and keep.exists()


# --- a prepared data set edited by hand: one line naming the file and line --

def _prepared(root):
    from handmade import write_dataset

    return write_dataset(root, ["kid", "dancer"], [("train", 0, ["kid", "dancer"], "kids dance"),
                                                    ("test", 0, ["kid"], "kid")])


def _edit_manifest(root, fn):
    m = json.loads((root / "manifest.json").read_text())
    fn(m)
    (root / "manifest.json").write_text(json.dumps(m))


def _edit_line(root, name, line, fn):
    path = root / name
    rows = [json.loads(l) for l in path.read_text().splitlines()]
    fn(rows[line - 1])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


# (case, edit of the prepared folder, expected text in the error)
PREPARED_CASES = [
    ("manifest without checksums", lambda r: _edit_manifest(r, lambda m: m.pop("checksums")),
     "manifest.json: manifest lacks 'checksums'"),
    ("manifest without posts checksum", lambda r: _edit_manifest(r, lambda m: m["checksums"].pop("posts.jsonl")),
     "manifest.json: manifest 'checksums' lacks the sha256 of posts.jsonl"),
    ("manifest not an object", lambda r: (r / "manifest.json").write_text("[2]"), "manifest.json: corrupt manifest"),
    ("hashtag with an extra key", lambda r: _edit_line(r, "hashtags.jsonl", 2, lambda d: d.update(extra=1)),
     "hashtags.jsonl:2: unknown key 'extra'"),
    ("hashtag without longtail", lambda r: _edit_line(r, "hashtags.jsonl", 1, lambda d: d.pop("longtail")),
     "hashtags.jsonl:1: missing key 'longtail'"),
    ("post with an unknown key", lambda r: _edit_line(r, "posts.jsonl", 2, lambda d: d.update(likes=3)),
     "posts.jsonl:2: unknown key 'likes'"),
    ("post without split", lambda r: _edit_line(r, "posts.jsonl", 1, lambda d: d.pop("split")),
     "posts.jsonl:1: missing key 'split'"),
    ("post line not an object", lambda r: (r / "posts.jsonl").write_text('[1, 2]\n'),
     "posts.jsonl:1: expected a JSON object"),
]


@pytest.mark.parametrize("case,edit,expected", PREPARED_CASES, ids=[c[0] for c in PREPARED_CASES])
def test_hand_edited_prepared_data_set_is_a_data_error(tmp_path, case, edit, expected):
    from v2ht_kg.kg.dataset import PreparedDataset
    from v2ht_kg.kg.errors import DataError

    root = _prepared(tmp_path / "data")
    edit(root)
    with pytest.raises(DataError) as e:
        ds = PreparedDataset(root)
        ds.fingerprint, ds.hashtags, ds.posts, ds.users
    assert str(e.value).startswith(str(root / expected.split(":")[0])), str(e.value)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_post_without_oov_still_reads_as_zero(tmp_path):
    from v2ht_kg.kg.dataset import PreparedDataset

    root = _prepared(tmp_path / "data")
    _edit_line(root, "posts.jsonl", 2, lambda d: d.pop("oov"))
    assert [p.oov for p in PreparedDataset(root).posts] == [0, 0]


def test_hand_edited_prepared_data_set_is_one_line_from_the_cli(tmp_path):
    w = tmp_path / "w"
    root = _prepared(w / "data")
    _edit_line(root, "hashtags.jsonl", 1, lambda d: d.update(extra=1))
    line = _one_line_error(_cli("data", "stats", "-w", w, "--json"))
    assert "hashtags.jsonl:1: unknown key 'extra'" in line, line


def test_manifest_checksums_are_verified(tmp_path):
    from v2ht_kg.kg.dataset import PreparedDataset
    from v2ht_kg.kg.errors import DataError

    root = _prepared(tmp_path / "data")
    PreparedDataset(root).verify_checksums()
    with open(root / "users.jsonl", "a") as f:
        f.write("\n")
    with pytest.raises(DataError, match=r"users.jsonl: changed since preparation"):
        PreparedDataset(root).verify_checksums()
    (root / "users.jsonl").unlink()
    with pytest.raises(DataError, match=r"users.jsonl: listed in the manifest but missing"):
        PreparedDataset(root).verify_checksums()


def test_missing_best_model_is_an_error_not_a_silent_fallback(tmp_path):
    import shutil

    from gnn_fixtures import TinyModel, write_graph, write_prepared
    from v2ht_kg.gnn import runs
    from v2ht_kg.gnn.trainer import train
    from v2ht_kg.kg.errors import DataError

    write_prepared(tmp_path / "data", seed=3)
    graph = write_graph(tmp_path / "data", tmp_path / "graph.pt")
    train(tmp_path / "data", graph, tmp_path / "run", epochs=1, batch_size=16, model_factory=TinyModel,
          model_options={"d_hashtag": 8}, seed=1)
    runs.load_run(tmp_path / "run", model_factory=TinyModel)  # best.pt is there
    (tmp_path / "run" / "best.pt").unlink()
    with pytest.raises(DataError, match=r"best\.pt: missing: the run's best model .*--resume") as e:
        runs.load_run(tmp_path / "run", model_factory=TinyModel)
    assert "\n" not in str(e.value)
    # asked for explicitly, the last checkpoint is still there to use
    assert not runs.load_run(tmp_path / "run", model_factory=TinyModel, which="last").model.training
    shutil.rmtree(tmp_path / "run")


def test_unfinished_run_is_refused_with_the_resume_command(tmp_path):
    # a train killed mid-way leaves status "training" in metrics.json: its
    # best.pt is not the run's final choice, so evaluate/recommend refuse it
    from gnn_fixtures import TinyModel, write_graph, write_prepared
    from v2ht_kg.gnn import runs
    from v2ht_kg.gnn.trainer import train
    from v2ht_kg.kg.errors import DataError

    write_prepared(tmp_path / "data", seed=3)
    graph = write_graph(tmp_path / "data", tmp_path / "graph.pt")
    train(tmp_path / "data", graph, tmp_path / "run", epochs=1, batch_size=16, model_factory=TinyModel,
          model_options={"d_hashtag": 8}, seed=1)
    path = tmp_path / "run" / runs.METRICS
    m = json.loads(path.read_text())
    path.write_text(json.dumps({**m, "status": "training"}))
    with pytest.raises(DataError, match=r"unfinished \(status 'training'.*--run run --resume") as e:
        runs.load_run(tmp_path / "run", model_factory=TinyModel)
    assert "\n" not in str(e.value)
    path.write_text(json.dumps(m))
    assert not runs.load_run(tmp_path / "run", model_factory=TinyModel).model.training


def test_credentials_in_a_store_uri_are_refused_and_never_echoed(tmp_path):
    line = _one_line_error(_cli("store", "status", "--store", "bolt://neo4j:s3cret-pw@localhost:7687",
                                "-w", tmp_path))
    assert "credentials in the URI are not accepted" in line and "s3cret" not in line, line
    line = _one_line_error(_cli("cypher", "RETURN 1", "--store", "http://neo4j:s3cret-pw@localhost", "-w", tmp_path))
    assert "s3cret" not in line and "expected bolt://" in line, line


def test_a_port_that_does_not_speak_bolt_fails_in_seconds(tmp_path):
    import socket
    import threading
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve():  # accept, read, answer like a web server, close
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            with c:
                c.recv(64)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        r = _cli("store", "status", "--store", f"bolt://127.0.0.1:{port}", "-w", tmp_path,
                 env={"NEO4J_PASSWORD": "x"})
        took = time.monotonic() - t0
    finally:
        stop.set()
        t.join()
        srv.close()
    assert "unreachable" in _one_line_error(r)
    assert took < 30, took  # the driver's default waits 60 s


def test_a_deleted_store_password_is_not_silently_replaced(tmp_path):
    from v2ht_kg.kg.config import embedded_password
    from v2ht_kg.kg.errors import StoreError

    wd = tmp_path / "w"
    first = embedded_password(wd)  # a new store: generated once
    assert embedded_password(wd) == first
    users = wd / "store" / "arcadedb" / "config" / "server-users.jsonl"
    users.parent.mkdir(parents=True)
    users.write_text('{"name": "root"}\n')  # what the server writes when it creates its users
    (wd / "store" / ".password").unlink()
    with pytest.raises(StoreError, match=r"\.password: missing or empty, but the store there already has its users"):
        embedded_password(wd)
    assert not (wd / "store" / ".password").exists()


def test_a_store_that_lost_a_file_is_refused_and_build_fresh_repairs_it(tmp_path):
    """A deleted bucket used to read as an empty type: 0 rows, exit 0."""
    wd = tmp_path / "w"
    env = {k: v for k, v in os.environ.items() if k != "V2HT_STORE"}
    build = CLI + ["build", "--format", "synthetic", "--preset", "tiny", "-w", str(wd), "--json"]
    b = subprocess.run(build, capture_output=True, text=True, env=env, timeout=600)
    assert b.returncode == 0, b.stderr[-2000:]
    db = wd / "store" / "arcadedb" / "databases" / "neo4j"
    count = CLI + ["cypher", "MATCH (h:Hashtag) RETURN count(h) AS n", "-w", str(wd), "--json"]
    next(db.glob("Hashtag_0.*.bucket")).unlink()
    line = _one_line_error(subprocess.run(count, capture_output=True, text=True, env=env, timeout=300))
    assert "Hashtag" in line and "build --fresh" in line, line
    f = subprocess.run(build + ["--fresh"], capture_output=True, text=True, env=env, timeout=600)
    assert f.returncode == 0, f.stderr[-2000:]
    ok = subprocess.run(count, capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout)[0]["n"] == json.loads(b.stdout)["graph"]["hashtags"]
    (db / "schema.json").unlink()
    line = _one_line_error(subprocess.run(count, capture_output=True, text=True, env=env, timeout=300))
    assert "schema.json" in line and "build --fresh" in line, line


# --- a full disk: one line naming the file, nothing half-written, never SIGBUS

@contextlib.contextmanager
def _small_disk(path, megabytes):
    """A real file system of ``megabytes`` (tmpfs); skips where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _cli_env():
    return {k: v for k, v in os.environ.items() if k != "V2HT_STORE"}


# Sizes that run out of room at each stage of a tiny build: while generating
# the raw set, while copying features into the prepared set (a memory map:
# this died with SIGBUS, exit 134 under the JVM), and in the store.
@pytest.mark.parametrize("megabytes", [4, 12, 22, 26])
def test_build_on_a_full_disk_is_one_line_naming_where(tmp_path, megabytes):
    with _small_disk(tmp_path / "disk", megabytes) as disk:
        wd = disk / "w"
        p = subprocess.run(CLI + ["build", "--format", "synthetic", "--preset", "tiny", "-w", str(wd), "--json"],
                           capture_output=True, text=True, env=_cli_env(), timeout=600)
        if p.returncode == 0:  # the engine's page sizes moved: room enough after all
            assert (wd / "graph.pt").exists()
            return
        line = _one_line_error(p)
        assert ("No space left on device" in line or "is full" in line) and str(disk) in line, line
        assert not (wd / "data").exists() and not list(wd.glob("data.tmp-*")), sorted(os.listdir(wd))


def test_train_on_a_full_disk_names_the_file_and_resume_retries(tmp_path):
    with _small_disk(tmp_path / "disk", 60) as disk:
        wd = disk / "w"
        b = subprocess.run(CLI + ["build", "--format", "synthetic", "--preset", "tiny", "-w", str(wd), "--json"],
                           capture_output=True, text=True, env=_cli_env(), timeout=600)
        assert b.returncode == 0, b.stderr[-2000:]
        filler = disk / "filler"
        with open(filler, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, max(shutil.disk_usage(disk).free - (300 << 10), 1))
        train = CLI + ["train", "-w", str(wd), "--epochs", "1", "--threads", "1", "--run", "r", "--json"]
        p = subprocess.run(train, capture_output=True, text=True, env=_cli_env(), timeout=600)
        line = _one_line_error(p)
        assert "No space left on device" in line and str(wd / "runs" / "r") in line, line
        again = subprocess.run(train, capture_output=True, text=True, env=_cli_env(), timeout=600)
        assert "--resume" in _one_line_error(again)
        filler.unlink()
        ok = subprocess.run(train + ["--resume"], capture_output=True, text=True, env=_cli_env(), timeout=600)
        assert ok.returncode == 0, ok.stderr[-2000:]
        assert json.loads((wd / "runs" / "r" / "metrics.json").read_text())["status"] == "done"
