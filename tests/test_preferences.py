"""The preference store: no label lost under concurrency, blind order, undo, agreement by hand, export."""
import json
import multiprocessing as mp

import pytest

from core import preferences as prefs


def _labeler(args):
    workspace, name, item_ids = args
    for i, item in enumerate(item_ids):
        prefs.submit(workspace, item, name, ["first", "second", "tie", "both_bad"][i % 4])
    return name


def test_twenty_concurrent_labelers_lose_nothing(tmp_path):
    prefs.create_queue(tmp_path, "q", labels_per_item=20)
    ids = prefs.add_pairs(tmp_path, "q", [{"prompt": f"p{i}", "answer_a": "x", "answer_b": "y"} for i in range(100)])
    with mp.get_context("spawn").Pool(20) as pool:
        done = pool.map(_labeler, [(str(tmp_path), f"labeler{n:02d}", ids) for n in range(20)])
    assert len(done) == 20
    rows = prefs.labels(tmp_path, "q")
    assert len(rows) == 2000
    assert len({(r["item_id"], r["labeler"]) for r in rows}) == 2000
    assert prefs.progress(tmp_path, "q")["complete"] == 100


def test_blind_order_maps_back_to_the_right_answer(tmp_path):
    ids = prefs.add_pairs(tmp_path, "q", [{"prompt": f"p{i}", "answer_a": f"A{i}", "answer_b": f"B{i}"} for i in range(20)])
    swapped = [prefs.flipped(i, "ann") for i in ids]
    assert any(swapped) and not all(swapped)  # both orders occur
    for _ in ids:
        item = prefs.next_item(tmp_path, "q", "ann")
        prefs.submit(tmp_path, item["id"], "ann", "first")  # always pick what is shown first
        assert item["first"] == (f"B{item['id'] - ids[0]}" if prefs.flipped(item["id"], "ann") else f"A{item['id'] - ids[0]}")
    chosen = {p["item_id"]: p["chosen"] for p in prefs.final_pairs(tmp_path, "q")}
    assert all(chosen[i].startswith("B" if prefs.flipped(i, "ann") else "A") for i in ids)


def test_undo_skip_and_resume(tmp_path):
    ids = prefs.add_pairs(tmp_path, "q", [{"prompt": f"p{i}", "answer_a": "x", "answer_b": "y"} for i in range(3)])
    first = prefs.next_item(tmp_path, "q", "bo")
    assert first["id"] == ids[0]
    assert prefs.next_item(tmp_path, "q", "bo", skip={ids[0]})["id"] == ids[1]  # skip
    prefs.submit(tmp_path, ids[0], "bo", "tie")
    assert prefs.next_item(tmp_path, "q", "bo")["id"] == ids[1]  # a reload resumes after the stored label
    assert prefs.undo_last(tmp_path, "q", "bo") == ids[0]
    assert prefs.next_item(tmp_path, "q", "bo")["id"] == ids[0]


def test_cohen_and_fleiss_kappa_equal_hand_computed_values(tmp_path):
    # Two labelers, 10 items: agree on 7. Choices used: a, b.
    ann = ["a", "a", "a", "a", "a", "b", "b", "b", "b", "b"]
    bob = ["a", "a", "a", "a", "b", "b", "b", "b", "a", "a"]
    ids = prefs.add_pairs(tmp_path, "k", [{"prompt": f"p{i}", "answer_a": "x", "answer_b": "y"} for i in range(10)])
    for i, (x, y) in zip(ids, zip(ann, bob)):
        for name, c in (("ann", x), ("bob", y)):
            shown = "first" if (c == "a") != prefs.flipped(i, name) else "second"
            prefs.submit(tmp_path, i, name, shown)
    result = prefs.agreement(tmp_path, "k")
    # p_o = 0.7; ann: a .5 b .5; bob: a .6 b .4 -> p_e = .5*.6 + .5*.4 = 0.5 -> kappa = 0.4
    assert result["cohen"]["ann / bob"]["cohen_kappa"] == pytest.approx(0.4)
    assert result["cohen"]["ann / bob"]["raw_agreement"] == pytest.approx(0.7)
    assert len(result["disagreements"]) == 3
    # Fleiss on two raters: p_j = (.55, .45), P_e = .505, P_bar = .7 -> (0.7 - .505) / .495
    assert result["fleiss"]["kappa"] == pytest.approx((0.7 - 0.505) / 0.495)


def test_fleiss_kappa_on_the_classic_example():
    # Fleiss (1971) as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert prefs.fleiss_kappa(table) == pytest.approx(0.210, abs=1e-3)


def test_import_export_both_formats_and_adjudication(tmp_path):
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [
        {"input_text": "q1", "candidate_0": "bad", "candidate_1": "good", "choice": 1},
        {"input_text": "q2", "candidate_0": "fine", "candidate_1": "worse", "choice": 0}]))
    assert prefs.import_file(tmp_path, src, "imp") == 2
    dpo = prefs.export(tmp_path, "imp", "dpo")
    assert dpo == [{"prompt": "q1", "chosen": "good", "rejected": "bad"},
                   {"prompt": "q2", "chosen": "fine", "rejected": "worse"}]
    vertex = prefs.export(tmp_path, "imp", "vertex")
    assert {(r["input_text"], r["choice"]) for r in vertex} == {("q1", 0), ("q2", 0)}
    item = prefs.final_pairs(tmp_path, "imp")[0]["item_id"]
    prefs.adjudicate(tmp_path, item, "b", by="lead")
    assert prefs.export(tmp_path, "imp", "dpo")[0] == {"prompt": "q1", "chosen": "bad", "rejected": "good"}
    prefs.adjudicate(tmp_path, item, "tie", by="lead")
    assert len(prefs.export(tmp_path, "imp", "dpo")) == 1  # ties are left out


def test_cli_prefs_import_stats_export(workspace, tmp_path, capsys):
    from core.cli import main

    src = tmp_path / "pairs.jsonl"
    src.write_text(json.dumps({"prompt": "q", "chosen": "y", "rejected": "n"}) + "\n")
    ws = ["--workspace", str(workspace)]
    assert main(["prefs", "import", str(src), "--queue", "demo", *ws]) == 0
    assert main(["prefs", "stats", "--queue", "demo", "--json", *ws]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(out)["items"] == 1
    dest = tmp_path / "out.jsonl"
    assert main(["prefs", "export", "--queue", "demo", "--format", "vertex", "--out", str(dest), *ws]) == 0
    assert json.loads(dest.read_text()) == {"input_text": "q", "candidate_0": "y", "candidate_1": "n", "choice": 0}
    with pytest.raises(SystemExit) as refused:  # an unsafe queue name is an argument error: exit 2
        main(["prefs", "import", str(src), "--queue", "../bad", *ws])
    assert refused.value.code == 2


def test_generate_two_candidates_per_prompt_into_a_queue(workspace, tiny_model_dir, tmp_path, capsys):
    from core.cli import main

    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt\n" + "".join(f"Say something about topic {i}\n" for i in range(4)))
    code = main(["prefs", "generate", "--prompts", str(prompts), "--queue", "gen", "--model-a", str(tiny_model_dir),
                 "--model-b", str(tiny_model_dir), "--temperature-a", "1.2", "--temperature-b", "1.5", "--max-output-tokens", "6",
                 "--workspace", str(workspace)])
    assert code == 0
    items = [prefs.next_item(workspace, "gen", "x")]
    assert items[0] is not None and items[0]["prompt"].startswith("Say something")
    assert prefs.progress(workspace, "gen")["items"] >= 1


def test_an_item_exports_only_with_its_k_labels(tmp_path):
    prefs.create_queue(tmp_path, "k2", labels_per_item=2)
    [item] = prefs.add_pairs(tmp_path, "k2", [{"prompt": "p", "answer_a": "x", "answer_b": "y"}])
    pick_a = lambda who: "second" if prefs.flipped(item, who) else "first"  # noqa: E731
    prefs.submit(tmp_path, item, "ann", pick_a("ann"))
    assert prefs.export(tmp_path, "k2", "dpo") == []  # one label of two
    prefs.submit(tmp_path, item, "bob", pick_a("bob"))
    assert prefs.export(tmp_path, "k2", "dpo") == [{"prompt": "p", "chosen": "x", "rejected": "y"}]
    assert prefs.get_item(tmp_path, item)["answer_a"] == "x"


def test_candidates_as_a_background_job(workspace, tiny_model_dir, tmp_path):
    from core import jobs, runs

    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt\n" + "".join(f"Tell me about item {i}\n" for i in range(3)))
    from core.config import CandidatesConfig

    out = jobs.create_candidates(workspace, CandidatesConfig(
        prompts=str(prompts), queue="bg", a={"model": str(tiny_model_dir), "temperature": 1.2},
        b={"model": str(tiny_model_dir), "temperature": 1.5}))
    assert jobs.submit(out) == "started"
    status = jobs.wait(out, poll=0.5, timeout=240)
    assert status["state"] == "succeeded", runs.log_tail(out)
    assert status["done"] == status["total"] == 6 and status["pairs"] == prefs.progress(workspace, "bg")["items"]


def test_kappa_is_undefined_when_every_label_is_the_same_choice(tmp_path):
    items = prefs.add_pairs(tmp_path, "same", [{"prompt": f"p{i}", "answer_a": "x", "answer_b": "y"} for i in range(4)])
    for item in items:
        for who in ("ann", "bob"):
            prefs.submit(tmp_path, item, who, "second" if prefs.flipped(item, who) else "first")  # always A
    result = prefs.agreement(tmp_path, "same")
    assert result["raw_agreement"] == 1.0
    assert result["cohen"]["ann / bob"]["cohen_kappa"] is None  # 0/0, not "almost perfect"
    assert result["fleiss"]["kappa"] is None


def test_unlabeled_pairs_import_into_a_queue_to_be_labeled(tmp_path):
    from core.requests import count_pairs

    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"input_text": "q1", "candidate_0": "a", "candidate_1": "b"}) + "\n"
                    + json.dumps({"input_text": "q2", "candidate_0": "c", "candidate_1": "d", "choice": None}) + "\n"
                    + json.dumps({"input_text": "q3", "candidate_0": "e", "candidate_1": "f", "choice": 0}) + "\n")
    assert prefs.import_file(tmp_path, path, "fresh") == 3
    assert prefs.progress(tmp_path, "fresh")["items"] == 3
    imported = [r for r in prefs.labels(tmp_path, "fresh") if r["labeler"] == "imported"]
    assert len(imported) == 1  # only the pair that came with a choice
    assert prefs.next_item(tmp_path, "fresh", "ann")["prompt"] == "q1"  # waiting for ann's label
    assert count_pairs(tmp_path, train_file=str(path)) == 1  # DPO counts labeled pairs only


def test_cli_stats_print_an_undefined_kappa(workspace, capsys):
    from core.cli import main

    items = prefs.add_pairs(workspace, "same", [{"prompt": f"p{i}", "answer_a": "x", "answer_b": "y"}
                                                for i in range(3)])
    for item in items:
        for who in ("ann", "bob"):
            prefs.submit(workspace, item, who, "second" if prefs.flipped(item, who) else "first")
    assert main(["prefs", "stats", "--queue", "same", "--workspace", str(workspace)]) == 0
    out = capsys.readouterr().out
    assert "Cohen's kappa ann / bob: undefined" in out and "Fleiss' kappa: undefined" in out
