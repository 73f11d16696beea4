from __future__ import annotations

import json

from mmsa_marl_core import JsonlMetrics, MetricsLogger, read_metrics


def test_jsonl_write_truncate_and_read(tmp_path):
    sink = JsonlMetrics(tmp_path / "metrics.jsonl")
    sink.write({"kind": "train", "env_steps": 1, "loss": 0.5})
    offset = sink.offset()
    sink.write({"kind": "eval", "env_steps": 2, "return_mean": float("nan")})
    sink.write({"kind": "train", "env_steps": 3, "loss": float("inf")})
    lines = read_metrics(tmp_path)
    assert [x["env_steps"] for x in lines] == [1, 2, 3]
    assert lines[1]["return_mean"] is None  # JSON has no NaN
    sink.truncate(offset)
    sink.write({"kind": "eval", "env_steps": 4})
    sink.close()
    assert [x["env_steps"] for x in read_metrics(tmp_path)] == [1, 4]
    assert [x["env_steps"] for x in read_metrics(tmp_path, "eval")] == [4]
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        json.loads(line)
    assert read_metrics(tmp_path / "missing") == []


def test_logger_protocol():
    class Sink:
        def __init__(self):
            self.seen = []

        def log(self, kind, env_steps, metrics):
            self.seen.append((kind, env_steps))

        def close(self):
            pass

    assert isinstance(Sink(), MetricsLogger)
    assert not isinstance(object(), MetricsLogger)
