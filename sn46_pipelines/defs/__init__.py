"""Dagster wiring only, one package per domain (listings, training, model store) and the
instance's run history (:mod:`.run_history`), merged in :mod:`sn46_pipelines.definitions`.
The libraries they call import no Dagster."""

import warnings

import dagster as dg

# Source-code references and code-server automation are beta in Dagster 1.13; the project uses
# both on purpose, so their warnings would only bury real ones in every process that loads it.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
