"""The SN46 price model: a torch regressor on log sale price, usable without Dagster.

>>> result = train(training_listings(data_store), TrainConfig(epochs=20))
>>> record = commit_checkpoint(ModelStore.open(url), result, "/tmp/ckpt")
>>> Predictor.load("/tmp/ckpt").predict([{"living_area": 1800, "zip_code": "78701", ...}])

Modules: ``features`` (input vector, split), ``model`` (the network),
``train``, ``baseline`` and ``metrics``, ``export`` (ONNX), ``checkpoint``
(files and commit), ``predictor`` (loading for serving), ``deploy`` (moving
the pin), ``serve`` (HTTP app) and ``pipes_train`` (the Dagster Pipes child).
Importing this package loads nothing heavy; import the modules you need.
"""
