"""The deployment gate's rules by name: what each asks, for the checks that show them.

A module of its own with no imports, so the Dagster process declares one
blocking check per rule on ``price_model`` without loading torch; the
limits are the environment's ``model_gate`` settings, and each evaluation's
metadata shows the value measured and the limit it met. :mod:`.gate`
measures them.
"""

#: Rule name (the asset check's name) -> what it asks, in the order the gate reports them.
RULES: dict[str, str] = {
    "sn46_mape": "SN46's target: validation MAPE, run in onnxruntime on one CPU thread, below "
    "model_gate.max_mape (default 0.15).",
    "sn46_r2": "SN46's target: validation R^2 in onnxruntime above model_gate.min_r2 (default 0.70).",
    "robust_to_feature_noise": "SN46's robustness check: uniform +-1 % multiplicative noise on every input "
    "but the coordinates raises validation MAPE by at most model_gate.max_noise_rise (default 0.01); with "
    "the coordinates noised too (+-1 % of a latitude is tens of km) the model still beats the zip median.",
    "onnx_constraints": "SN46's format: model.onnx at most model_gate.max_onnx_mb (default 200 MB), one "
    "float32 input (batch, N) with a dynamic batch and 10 <= N <= 76.",
    "onnxruntime_matches_torch": "onnxruntime on CPU gives the trained network's prices (log difference at "
    "most 1e-4) on the validation rows and per-feature quantiles of them.",
    "beats_zip_median_baseline": "Validation MAPE below the per-zipcode median-price baseline's, on the same "
    "rows: a model that does not beat the local median is never deployed.",
}
