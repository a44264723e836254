-- MLA-Bench results store (DESIGN.md §3, STYLE.md rule 18). Append-only: runs and samples are
-- never updated except runs.finished_at; metrics and kv_memory are derived from the samples and
-- may be recomputed (one row per key). results_store.cpp embeds this file at build time and runs
-- it on a database without tables; schema_version holds the one version row (4).
-- Version history (results_store.cpp migrates older databases when it opens them for writing):
--   1  first version
--   2  samples gain prompt_tokens, new_tokens, kv_tokens, prefill_s, decode_s (speed and
--      per-token KV bytes recomputed from the stored rows)
--   3  samples gain kv_bytes_peak (the largest KV cache of the sample's batch during generation,
--      its share; quantized caches peak before a re-quantization, pruned ones after a prefill)
--   4  train_runs and train_steps (`mla-bench train`: one row per optimizer step; a resumed run
--      deletes the steps from its checkpoint's step on and writes them again, as train_log.jsonl)
CREATE TABLE IF NOT EXISTS schema_version (
  version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  git_sha TEXT NOT NULL,
  torch_version TEXT NOT NULL,
  device TEXT NOT NULL,
  threads INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  config_json TEXT NOT NULL,   -- the fully resolved config
  started_at TEXT NOT NULL,    -- ISO 8601 UTC
  finished_at TEXT             -- NULL while running or after a crash
);

CREATE TABLE IF NOT EXISTS samples (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  task TEXT NOT NULL,
  sample_id TEXT NOT NULL,
  prediction TEXT NOT NULL,
  metrics_json TEXT NOT NULL,  -- per-sample metric values (JSON object)
  latency_s REAL NOT NULL,
  kv_bytes INTEGER NOT NULL,   -- the sample's share of its batch's KV cache (bytes, all layers)
  error TEXT NOT NULL DEFAULT '',  -- non-empty: the sample failed with this message
  -- version 2: the sample's share of its batch's work (a batch's totals divided by its rows)
  prompt_tokens INTEGER NOT NULL DEFAULT 0,  -- prompt tokens prefilled (padding included)
  new_tokens INTEGER NOT NULL DEFAULT 0,     -- decode positions computed
  kv_tokens INTEGER NOT NULL DEFAULT 0,      -- token slots held in the KV cache at the end
  prefill_s REAL NOT NULL DEFAULT 0,         -- vision + prefill seconds
  decode_s REAL NOT NULL DEFAULT 0,          -- decode seconds
  -- version 3
  kv_bytes_peak INTEGER NOT NULL DEFAULT 0,  -- the sample's share of its batch's peak KV bytes
  UNIQUE (run_id, task, sample_id)
);

CREATE TABLE IF NOT EXISTS metrics (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  task TEXT NOT NULL,
  metric TEXT NOT NULL,
  value REAL NOT NULL,
  n INTEGER NOT NULL,          -- samples the value is computed from
  UNIQUE (run_id, task, metric)
);

CREATE TABLE IF NOT EXISTS kv_memory (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  method TEXT NOT NULL,
  bytes_per_token_layer_measured REAL NOT NULL,
  analytic REAL NOT NULL,          -- bytes/token/layer from the method's formula
  vs_original REAL NOT NULL,       -- measured / the original model's cache
  vs_mha_equivalent REAL NOT NULL, -- measured / an MHA cache of the same model
  UNIQUE (run_id, method)
);

-- version 4: fine-tuning runs of `mla-bench train` (issue F8). A training run is not an eval run:
-- reports, regress and the eval dashboard sections read `runs` only.
CREATE TABLE IF NOT EXISTS train_runs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,   -- --run-name, default "train:<absolute --out dir>"
  git_sha TEXT NOT NULL,
  torch_version TEXT NOT NULL,
  device TEXT NOT NULL,
  threads INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  config_json TEXT NOT NULL,   -- the run's options (stage, model, data, lr, batch, ...)
  started_at TEXT NOT NULL,    -- ISO 8601 UTC
  finished_at TEXT             -- NULL while running, after a crash, or after --stop-after
);

CREATE TABLE IF NOT EXISTS train_steps (
  run_id INTEGER NOT NULL REFERENCES train_runs(id),
  step INTEGER NOT NULL,         -- 0-based optimizer step (train_log.jsonl's "step")
  loss REAL NOT NULL,            -- mean cross entropy over the step's supervised tokens
  lr REAL NOT NULL,
  grad_norm REAL NOT NULL,       -- before clipping
  tokens INTEGER NOT NULL,       -- input tokens of the step, padding included
  supervised INTEGER NOT NULL,   -- tokens with a label
  tokens_per_s REAL NOT NULL,    -- tokens / the step's wall time
  elapsed_s REAL NOT NULL,       -- since the (resumed) process started training
  PRIMARY KEY (run_id, step)
);

INSERT INTO schema_version (version) VALUES (4);
