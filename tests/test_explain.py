"""`v2ht-kg explain` on a real tiny synthetic graph in the embedded store and
a real (one epoch) V2HT run: the planted rare tag, exact attributions, the
score path, graph-only mode, drawings, and one-line errors."""
from __future__ import annotations

import json

import pytest
import torch

from v2ht_kg.gnn import explain as X
from v2ht_kg.gnn.evaluate import Run
from v2ht_kg.kg.errors import V2HTError

TOL = 1e-6


@pytest.fixture(scope="module")
def world(store, tmp_path_factory):
    from v2ht_kg.gnn.runs import load_run
    from v2ht_kg.gnn.trainer import train
    from v2ht_kg.kg.pipeline import build_graph, prepare_source
    from v2ht_kg.kg.prepare import default_params
    from v2ht_kg.kg.workdir import Workdir

    wd = Workdir(tmp_path_factory.mktemp("explain"))
    ds, _ = prepare_source(None, "synthetic", wd, default_params("synthetic"), preset="tiny")
    build_graph(ds, store, wd, fresh=True)
    train(wd.data, wd.graph, wd.runs / "r1", epochs=1, threads=1, baselines=False, max_text_tokens=6, seed=0)
    run = load_run(wd.runs / "r1")
    gen = json.loads(next(wd.raw_synthetic.glob("*/generator.json")).read_text())
    return {"wd": wd, "ds": ds, "run": run, "planted": gen["planted"], "store": store}


def _tag_with_most_neighbours(run) -> int:
    topo = run.model.propagation.topo
    return int(torch.argmax(topo.crow[1:] - topo.crow[:-1]))


def test_planted_neighbour_is_named_first(world):
    pl, run = world["planted"], world["run"]
    e = X.explain_tag(run, world["store"], pl["tag"], post=pl["posts"][0])
    assert e["tag"] == pl["tag"] and e["longtail"]
    prop = e["propagation"]
    assert prop["neighbours"][0]["tag"] == pl["neighbour"]
    assert prop["neighbours"][0]["type"] == "cp"
    # through all layers too: the first source besides the tag itself
    first_other = next(s for s in prop["sources"] if s["tag"] != pl["tag"])
    assert first_other["tag"] == pl["neighbour"] and first_other["hops"] == 1
    assert f"`{pl['neighbour']}` (cp," in e["summary"]
    cp = e["graph"]["neighbours"]["cp"]
    assert cp and cp[0]["tag"] == pl["neighbour"]
    assert pl["neighbour"] in cp[0]["evidence"]  # the shared word
    # the post's own tags are never evidence: the post is left out of the user's history
    assert e["post"]["id"] == pl["posts"][0] and pl["tag"] in e["post"]["true_tags"]
    assert pl["tag"] not in [u["tag"] for u in e["user"]["history"]]
    # the count names the whole history; the neighbours come from all of it, not only the tags listed
    u = e["user"]
    assert u["past_tags"] >= len(u["history"]) and len(u["neighbours"]) <= u["past_tags"]
    assert len({n["tag"] for n in u["neighbours"]}) == len(u["neighbours"])


@pytest.mark.parametrize("pick", ["planted", "hub", "first"])
def test_shares_sum_to_one_and_match_a_dense_recomputation(world, pick):
    run = world["run"]
    model, names = run.model, [h.name for h in world["ds"].hashtags]
    h = {"planted": world["ds"].tag_index[world["planted"]["tag"]], "hub": _tag_with_most_neighbours(run),
         "first": 0}[pick]
    prop = X.propagation_attribution(model, h, names, top_sources=10_000)
    n_layers = prop["layers"]
    for l in range(n_layers):
        total = prop["self"]["layer_shares"][l] + sum(n["layer_shares"][l] for n in prop["neighbours"])
        if prop["residual_share"] is not None and l == n_layers - 1:
            total += prop["residual_share"]
        assert total == pytest.approx(1.0, abs=TOL)
    assert sum(s["share"] for s in prop["sources"]) + prop["sources_rest"] == pytest.approx(1.0, abs=TOL)
    assert prop["check"]["max_sum_deviation"] < TOL

    # Independent recomputation from the model's public edge_weights(): a dense
    # Â must reproduce the model's e'(h), and its last-layer messages the shares.
    w = model.edge_weights()
    n = model.cfg.n_hashtags
    ei = w["edge_index"]
    ok = ~torch.isnan(w["A_hat"])
    dense = torch.zeros(n, n, dtype=torch.float64)
    dense[ei[0][ok], ei[1][ok]] = w["A_hat"][ok].double()
    dense += torch.diag(w["self_A_hat"].double())
    y = model.hashtag_emb.detach().double()
    layers = model.propagation.layers
    for i, lin in enumerate(layers):
        x = y @ lin.weight.detach().double().T
        if i == len(layers) - 1:
            last_x = x
        y = dense @ x
        if i < len(layers) - 1:
            y = torch.relu(y)
    with torch.no_grad():
        e_model = model.hashtag_embeddings()[h].double()
    assert torch.allclose(y[h], e_model, atol=1e-4)
    whole = y[h]
    for nb in prop["neighbours"]:
        msg = dense[h, nb["id"]] * last_x[nb["id"]]
        assert nb["layer_shares"][-1] == pytest.approx(float(msg @ whole / (whole @ whole)), abs=1e-6)
        assert nb["A_hat"] == pytest.approx(float(dense[h, nb["id"]]), abs=1e-6)
    # every neighbour of h in the graph is listed, none else
    nbrs = set(ei[1][ei[0] == h].tolist()) - {h}
    assert {nb["id"] for nb in prop["neighbours"]} == nbrs


def test_score_path_and_attention(world):
    run, pl = world["run"], world["planted"]
    model = run.model
    ex = X.Explainer(run, world["store"], post=pl["posts"][0])
    h = world["ds"].tag_index[pl["tag"]]
    with torch.no_grad():
        full = model.score_all(ex.batch)[0]
        same = X._scores_with(model, ex.batch, model.hashtag_embeddings())
    # the no-propagation path scores like the model when given e'(h) itself
    assert torch.allclose(full, same, atol=1e-4)
    sp = X.score_path(model, ex.batch, h)
    assert sp["rank"] == 1 + int((full > full[h]).sum())
    with torch.no_grad():
        base = X._scores_with(model, ex.batch, model.hashtag_emb)
    assert sp["without_propagation"]["logit"] == pytest.approx(float(base[h]), abs=1e-5)
    assert sp["lift"]["ranks_gained"] == sp["without_propagation"]["rank"] - sp["rank"]
    att = X.attention_focus(model, run.data, ex.batch, h, ex.tokens)
    assert set(att) == set(model.cfg.modalities)
    for mod, a in att.items():
        ws = [s["weight"] for s in a["top"]]
        assert ws == sorted(ws, reverse=True) and 0 < ws[0] <= 1.0 + 1e-6


def test_new_text_by_user_and_graph_only_mode(world):
    run, pl, store = world["run"], world["planted"], world["store"]
    ds = world["ds"]
    user = ds.users[1]["name"]
    text = f"a walk on the {pl['neighbour']} today"
    e = X.explain_tag(run, store, pl["tag"], text=text, user=user)
    assert pl["neighbour"] in e["text_hashtags"]
    assert any(p["target"] == pl["neighbour"] and p["hops"] == 1 and p["types"] == ["cp"]
               for p in e["graph"]["paths"])
    g = X.explain_graph_only(store, pl["tag"], text=text, user=user)
    assert g["propagation"] is None and g["score"] is None
    assert g["graph"]["neighbours"] == e["graph"]["neighbours"]
    assert g["graph"]["paths"] == e["graph"]["paths"]
    # a surface form resolves to the canonical tag
    surface = "".join(w.capitalize() for w in pl["tag"].split())
    assert X.explain_graph_only(store, surface)["tag"] == pl["tag"]


def test_drawings(world, tmp_path):
    from v2ht_kg.gnn.explain_render import draw, render
    from rich.console import Console

    pl = world["planted"]
    e = X.to_jsonable(X.explain_tag(world["run"], world["store"], pl["tag"], post=pl["posts"][0]))
    png = draw(e, tmp_path / "x.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = draw(e, tmp_path / "x.html").read_text(encoding="utf-8")
    assert "<svg" in page and pl["neighbour"] in page
    assert "http://" not in page and "https://" not in page  # nothing is fetched
    data = page.split('id="explanation">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data.replace("<\\/", "</"))["tag"] == pl["tag"]
    con = Console(record=True, width=140)
    render(e, con)
    txt = con.export_text()
    assert pl["neighbour"] in txt and "without propagation" in txt
    # at 80 columns the tables fold names and keep every number whole
    narrow = Console(record=True, width=80)
    render(e, narrow)
    txt80 = narrow.export_text()
    assert "…" not in txt80 and max(len(line) for line in txt80.splitlines()) <= 80
    prop = e["propagation"]
    assert f"{prop['self']['A_prime']:.3f}" in txt80 and f"{prop['self']['source_share']:.3f}" in txt80
    with pytest.raises(V2HTError):
        draw(e, tmp_path / "x.svg")


def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_bad_inputs_are_one_line_errors(world):
    run, store, pl = world["run"], world["store"], world["planted"]
    first_word = pl["tag"].split()[0]
    with pytest.raises(V2HTError) as ei:
        X.explain_tag(run, store, first_word + "zz", post=pl["posts"][0])
    assert "unknown hashtag" in _one_line(ei) and pl["tag"] in str(ei.value)
    with pytest.raises(V2HTError) as ei:
        X.explain_graph_only(store, pl["neighbour"] + "x")
    assert pl["neighbour"] in _one_line(ei)
    with pytest.raises(V2HTError) as ei:
        X.explain_tag(run, store, pl["tag"], post="no-such-post")
    assert "unknown post" in _one_line(ei)
    with pytest.raises(V2HTError) as ei:
        X.explain_tag(run, store, pl["tag"], text="hello", user="nobody-here")
    assert "unknown user" in _one_line(ei)
    with pytest.raises(V2HTError) as ei:
        X.explain_graph_only(store, pl["tag"], user="nobody-here")
    assert "unknown user" in _one_line(ei)
    other = Run(run.model, {**run.cfg, "data_fingerprint": "0" * 32}, run.data)
    with pytest.raises(V2HTError) as ei:
        X.explain_tag(other, store, pl["tag"], post=pl["posts"][0])
    assert "another graph" in _one_line(ei)


def test_cli_json_and_exit_code(world, tmp_path, monkeypatch, capsys, embedded_server):
    import sys

    from v2ht_kg.cli import app as cli_app, explain_cmd

    if not any(c.callback is explain_cmd.explain for c in cli_app.app.registered_commands):
        monkeypatch.setattr(cli_app.app, "registered_commands", list(cli_app.app.registered_commands))
        cli_app.app.command()(explain_cmd.explain)
    monkeypatch.setenv("NEO4J_USER", embedded_server.user)
    monkeypatch.setenv("NEO4J_PASSWORD", embedded_server.password)
    pl = world["planted"]
    common = ["--store", embedded_server.uri, "-w", str(world["wd"].root)]
    html = tmp_path / "e.html"
    monkeypatch.setattr(sys, "argv", ["v2ht-kg", "explain", str(world["wd"].runs / "r1"), "--post", pl["posts"][0],
                                      "--tag", pl["tag"], "--json", "--out", str(html), *common])
    with pytest.raises(SystemExit) as ex:
        cli_app.main()
    assert ex.value.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["propagation"]["neighbours"][0]["tag"] == pl["neighbour"] and html.exists()
    monkeypatch.setattr(sys, "argv", ["v2ht-kg", "explain", "--tag", pl["tag"] + "qq", *common])
    with pytest.raises(SystemExit) as ex:
        cli_app.main()
    assert ex.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "unknown hashtag" in err and len(err.splitlines()) <= 2


def test_explain_suggestions_keeps_long_tail_tags(world, capsys):
    from v2ht_kg.cli.explain_cmd import explain_suggestions

    run, pl, ds = world["run"], world["planted"], world["ds"]
    head = next(h.name for h in ds.hashtags if not h.longtail)
    out = explain_suggestions(run, world["store"], post=pl["posts"][0],
                              suggestions=[(head, 0.9), (pl["tag"], 0.5)], json_out=True)
    assert [e["tag"] for e in out] == [pl["tag"]]
    assert capsys.readouterr().out == ""


def test_same_explanation_on_neo4j(world, neo4j_store, tmp_path):
    from v2ht_kg.kg.pipeline import build_graph
    from v2ht_kg.kg.workdir import Workdir

    build_graph(world["ds"], neo4j_store, Workdir(tmp_path), fresh=True)
    pl = world["planted"]
    a = X.to_jsonable(X.explain_tag(world["run"], world["store"], pl["tag"], post=pl["posts"][0]))
    b = X.to_jsonable(X.explain_tag(world["run"], neo4j_store, pl["tag"], post=pl["posts"][0]))
    assert a == b


def test_store_lacking_the_tag(world):
    """Last: it deletes one hashtag from the shared store."""
    run, store, ds = world["run"], world["store"], world["ds"]
    victim = next(h.name for h in ds.hashtags if h.name != world["planted"]["tag"])
    store.run("MATCH (h:Hashtag {name: $n}) DETACH DELETE h", {"n": victim}, write=True)
    with pytest.raises(V2HTError) as ei:
        X.explain_tag(run, store, victim, post=world["planted"]["posts"][0])
    assert "lacks the hashtag" in _one_line(ei)
