"""The spec's `resources:` and `storage:` blocks, and how a Ray task's weights reach the driver where the nodes share
no folder (adapters through the reply, full weights to a `storage:` URL), without starting Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessInputError
from harness.results import FINISHED, VariantResult, VariantRow
from harness.spec.plan import make_plan
from harness.spec.schema import load_spec
from harness.sweep.cluster_files import WorkFolder, attempts, check_storage, land, pack, record_attempt, work_folder
from harness.sweep.ray_executor import Request, request

SPEC = """\
name: r
model: tiny-random-llama
data: {train: train.jsonl, test: test.jsonl}
sweep: {method: [lora, full], rank: [2]}
"""


def spec_at(tmp_path: Path, extra: str = ""):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC + extra, encoding="utf-8")
    return load_spec(path)


def test_resources_and_storage_leave_every_variant_id_unchanged(tmp_path: Path) -> None:
    plain = spec_at(tmp_path)
    placed = spec_at(tmp_path, "resources: {gpus_per_variant: 4, cpus_per_variant: 8, resources: {a100: 1}, "
                               "timeout_minutes: 90}\nstorage: s3://bucket/harness\n")
    fp = {"train": "t", "validation": "v", "test": "x"}
    ids = [[v.variant_id for v in make_plan(s, "m@1", fp, [{"name": "heldout"}])] for s in (plain, placed)]
    assert ids[0] == ids[1] and len(ids[0]) == 3
    assert placed.resources.gpus_per_variant == 4 and placed.resources.resources == {"a100": 1}


@pytest.mark.parametrize(("extra", "says"), [
    ("storage: shared/weights\n", "an absolute path on a shared file system"),
    ("resources: {gpus_per_variant: -1}\n", "resources.gpus_per_variant"),
    ("resources: {resources: {GPU: 1}}\n", "GPU are set by gpus_per_variant"),
    ("resources: {resources: {a100: 0}}\n", "must be > 0"),
    ("resources: {gpu_per_variant: 1}\n", "gpu_per_variant"),
])
def test_a_bad_resources_or_storage_key_names_the_key_and_the_fix(tmp_path: Path, extra: str, says: str) -> None:
    with pytest.raises(HarnessInputError) as err:
        spec_at(tmp_path, extra)
    assert says in str(err.value), err.value


def test_the_request_defaults_to_one_gpu_where_the_cluster_has_them_and_names_what_no_node_has(tmp_path: Path) -> None:
    spec = spec_at(tmp_path)
    assert request(spec.resources, {"CPU": 8}) == Request(1.0, 0.0, {})
    assert request(spec.resources, {"CPU": 8, "GPU": 2}) == Request(1.0, 1.0, {})
    # a variant trained on 4 processes (train.distributed) asks for 4 GPUs, on a cluster that has GPUs only
    assert request(spec.resources, {"CPU": 8, "GPU": 8}, processes=4) == Request(1.0, 4.0, {})
    assert request(spec.resources, {"CPU": 8}, processes=4) == Request(1.0, 0.0, {})
    pinned = request(spec_at(tmp_path, "resources: {gpus_per_variant: 0, resources: {node_b: 1}}\n").resources,
                     {"GPU": 2})
    assert pinned.gpus == 0 and pinned.options()["resources"] == {"node_b": 1} and pinned.options()["max_retries"] == 1
    assert pinned.fits({"CPU": 1, "node_b": 1}) and not pinned.fits({"CPU": 4, "node_a": 1})


def finished(method: str, artifact: Path) -> VariantResult:
    return VariantResult(VariantRow("v1", method=method, status=FINISHED, artifact=str(artifact), node="n2 10.0.0.2 ab"))


def weights(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True)
    files = {"adapter_config.json": b'{"r": 2}', "adapter_model.safetensors": bytes(range(256)) * 40,
             "sub/tokenizer.json": b"{}"}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return files


def test_an_adapter_trained_where_the_driver_cannot_read_comes_back_beside_the_store(tmp_path: Path) -> None:
    node_scratch, driver_runs = tmp_path / "node", tmp_path / "driver" / "runs"
    files = weights(node_scratch / "v1" / "model")
    where = work_folder(str(driver_runs), str(driver_runs / ".driver-x"), None)  # the driver's marker is not here
    assert not where.shared and not where.on_storage
    reply = pack(finished("lora", node_scratch / "v1" / "model"), WorkFolder(node_scratch, shared=False), None)
    assert reply.shipped == files
    result = land(reply, driver_runs)
    assert result.variant.artifact == str(driver_runs / "v1" / "model")
    assert {str(p.relative_to(driver_runs / "v1" / "model")): p.read_bytes()
            for p in (driver_runs / "v1" / "model").rglob("*") if p.is_file()} == files
    assert result.variant.artifact_bytes == sum(map(len, files.values()))
    # the driver's own folder (shared): nothing travels
    (driver_runs / ".driver-y").write_text("host")
    shared = work_folder(str(driver_runs), str(driver_runs / ".driver-y"), None)
    assert shared.shared and pack(finished("lora", driver_runs / "v1" / "model"), shared, None).shipped is None


def test_full_weights_go_to_a_storage_url_or_stay_on_the_node_with_a_note(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    node_scratch = tmp_path / "node"
    files = weights(node_scratch / "v1" / "model")
    url = (tmp_path / "bucket").as_uri()  # file://: the same code as s3:// through fsspec
    check_storage(url)
    reply = pack(finished("full", node_scratch / "v1" / "model"), WorkFolder(node_scratch, shared=False), url)
    assert reply.shipped is None and reply.result.variant.artifact == f"{url}/v1/model"
    assert (tmp_path / "bucket" / "v1" / "model" / "sub" / "tokenizer.json").read_bytes() == b"{}"
    assert (tmp_path / "bucket" / "v1" / "model" / "adapter_model.safetensors").read_bytes() == files[
        "adapter_model.safetensors"]
    stays = pack(finished("full", node_scratch / "v1" / "model"), WorkFolder(node_scratch, shared=False), None)
    assert stays.shipped is None and "stay on node n2 10.0.0.2 ab" in str(stays.note) and "storage:" in str(stays.note)
    # a shared storage path: the node trains there, so nothing moves
    (tmp_path / "shared").mkdir()
    on_storage = work_folder(str(tmp_path / "driver"), str(tmp_path / "driver" / ".driver-x"), str(tmp_path / "shared"))
    assert on_storage.on_storage and on_storage.path == tmp_path / "shared" / "runs"
    with pytest.raises(HarnessInputError, match="storage: 'nosuchproto://x'"):
        check_storage("nosuchproto://x")


def test_each_try_of_a_variant_is_recorded_with_its_process_and_node(tmp_path: Path) -> None:
    assert record_attempt(tmp_path, "v1", "n1 10.0.0.1 aa") == 1
    assert record_attempt(tmp_path, "v1", "n2 10.0.0.2 bb") == 2
    assert [a["node"] for a in attempts(tmp_path, "v1")] == ["n1 10.0.0.1 aa", "n2 10.0.0.2 bb"]
    assert attempts(tmp_path, "v2") == []
