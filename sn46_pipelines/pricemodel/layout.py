"""The files of a price-model checkpoint and the kind its versions carry: names only, imported by
every module that writes, reads, serves or deploys a checkpoint."""

WEIGHTS = "model.pt"
ONNX = "model.onnx"
FEATURE_CONFIG = "feature_config.json"
METRICS = "metrics.json"
FILES = (WEIGHTS, ONNX, FEATURE_CONFIG, METRICS)

#: ``metadata["kind"]`` of price-model versions, so tools can tell them from other commits.
KIND = "sn46-price-model"
