"""TensorBoard event files read back without TensorBoard: tensorboardX's protobufs and the TFRecord framing
(length uint64, its CRC, the Event, its CRC), with TensorBoard's rule for restarts."""

import struct
from pathlib import Path

import numpy as np
from tensorboardX.proto import event_pb2


def _events(path: Path):
  data, pos = path.read_bytes(), 0
  while pos < len(data):
    (length,) = struct.unpack("<Q", data[pos:pos + 8])
    yield event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
    pos += 12 + length + 4


def read(folder: Path) -> tuple[dict, dict]:
  """``({tag: [(step, value)]}, {tag: [(step, HistogramProto)]})`` as TensorBoard shows ``folder``: files in name
  order, a SessionLog.START at step S hiding the events of earlier files at steps >= S."""
  scalars, histograms = {}, {}
  for path in sorted(Path(folder).glob("events.out.tfevents.*")):
    for event in _events(path):
      if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
        for tags in (scalars, histograms):
          for tag in tags:
            tags[tag] = [(step, v) for step, v in tags[tag] if step < event.step]
      for value in event.summary.value:
        target = histograms if value.HasField("histo") else scalars
        target.setdefault(value.tag, []).append((event.step, value.histo if value.HasField("histo")
                                                 else value.simple_value))
  return scalars, histograms


def expected_scalars(metrics: list[dict], stats: list[dict]) -> dict:
  """What lab10.tensorboard promises for these records: every number but ``step``, as float32."""
  out = {}
  for prefix, records in (("metrics/", metrics), ("", stats)):
    for r in records:
      for key, value in r.items():
        if key != "step":
          out.setdefault(prefix + key, []).append((r["step"], float(np.float32(np.nan if value is None else value))))
  return out
