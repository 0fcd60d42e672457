"""Checkpoint files, the commit through the model store, and the ONNX graph against torch."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import onnx
import pytest
import torch

from sn46_pipelines.modelstore import ModelStore
from sn46_pipelines.modelstore.inference import Checkpoint
from sn46_pipelines.pricemodel.checkpoint import code_version, commit_checkpoint
from sn46_pipelines.pricemodel.export import INPUT_NAME, OUTPUT_NAME
from sn46_pipelines.pricemodel.features import encode
from sn46_pipelines.pricemodel.layout import FILES, KIND
from sn46_pipelines.pricemodel.predictor import Predictor, load_net, load_predictor
from tests.pricemodel.pricemodel_helpers import demo_listings


def test_checkpoint_files_and_their_contents(checkpoint_dir, trained):
    assert sorted(p.name for p in checkpoint_dir.iterdir()) == sorted(FILES)
    metrics = json.loads((checkpoint_dir / "metrics.json").read_text())
    assert metrics["validation"] == trained.metrics
    assert metrics["baseline"]["mape"] == trained.baseline["mape"] and metrics["beats_baseline"] is True
    config = json.loads((checkpoint_dir / "feature_config.json").read_text())
    assert config["columns"] == trained.spec.columns and config["model"]["hidden"] == trained.net.hidden
    weights = torch.load(checkpoint_dir / "model.pt", weights_only=True)
    assert set(weights) == {k for k, _ in trained.net.named_parameters()}  # learned weights only


def test_commit_records_hashes_and_provenance_and_checks_out_identically(store, trained, tmp_path):
    models = ModelStore(store)
    record = commit_checkpoint(models, trained, tmp_path / "ckpt")
    assert sorted(record.manifest) == sorted(FILES)
    for name, entry in record.manifest.items():
        data = (tmp_path / "ckpt" / name).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest() and entry.size == len(data)
    meta = record.metadata
    assert meta["kind"] == KIND and meta["data_version"] == trained.data_version
    assert meta["code_version"] == code_version() and meta["code_version"].startswith("sha256:")
    assert meta["config"] == trained.config.to_dict() and meta["metrics"] == trained.metrics
    assert meta["training"]["device"] == trained.device

    out = tmp_path / "out"
    models.checkout(record.version_id, out)
    predictor = load_predictor(Checkpoint(record=models.get(record.counter), root=out))
    rows = demo_listings(rows_per_place=5, seed=3)
    assert np.array_equal(predictor.predict(rows), Predictor(trained.net, trained.spec).predict(rows))


def test_onnx_export_loads_and_agrees_with_torch(checkpoint_dir, listings):
    import onnxruntime

    model = onnx.load(str(checkpoint_dir / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == (INPUT_NAME, OUTPUT_NAME)
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    net, spec = load_net(checkpoint_dir / "model.pt", checkpoint_dir / "feature_config.json")
    assert inp.type.tensor_type.shape.dim[1].dim_value == spec.n_inputs

    x = encode(listings, spec)
    session = onnxruntime.InferenceSession(
        str(checkpoint_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    for rows in (x[:1], x[:256], x):  # the batch dimension is dynamic
        (onnx_prices,) = session.run(None, {INPUT_NAME: rows})
        with torch.inference_mode():
            torch_prices = net.price(torch.from_numpy(rows)).numpy()
        np.testing.assert_allclose(onnx_prices, torch_prices, rtol=1e-5)
    assert onnx_prices.min() > 10_000  # dollars come out


def test_onnx_graph_holds_no_dollar_scale_values(checkpoint_dir):
    model = onnx.load(str(checkpoint_dir / "model.onnx"))
    tensors = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer]
    tensors += [
        onnx.numpy_helper.to_array(a.t) for n in model.graph.node for a in n.attribute if a.type == a.TENSOR
    ]
    largest = max(float(np.abs(t.astype(np.float64)).max()) for t in tensors if t.size)
    assert largest < 10_000  # a mean year built (about 1,980) is the largest; a price would be >= 10,000


def test_the_onnx_probe_is_in_distribution_and_a_mismatching_export_is_refused(checkpoint_dir, trained):
    from sn46_pipelines.pricemodel.export import onnx_probe, verify_onnx

    rows = encode(trained.validation, trained.spec)
    probe = onnx_probe(trained.spec, rows)
    assert probe.shape[1] == trained.spec.n_inputs
    n = len(trained.spec.numeric)
    assert (probe[:, n:].max(axis=0) == 1.0).all()  # every one-hot column is exercised
    assert (probe[:, :n] >= rows[:, :n].min(axis=0)).all() and (probe[:, :n] <= rows[:, :n].max(axis=0)).all()
    assert verify_onnx(trained.net, trained.spec, checkpoint_dir / "model.onnx", rows=rows) <= 1e-4

    tampered = copy.deepcopy(trained.net)
    with torch.no_grad():
        tampered.layers[-1].bias += 0.01  # about 1 % on every price: far above the tolerance
    with pytest.raises(ValueError, match="disagree"):
        verify_onnx(tampered, trained.spec, checkpoint_dir / "model.onnx", rows=rows)
