"""SiamMask tracker (per-target state, batched multi-target tracking) and the VOT reset protocol."""
from .siammask_tracker import DEFAULT_LOST_THRESHOLD, SiamMaskTracker, TargetState, TrackResult
from .siammask_tracker import get_subwindow_tracking, select_anchor
from .vot import VOTSequenceResult, run_vot_sequence, vot_result_path, write_vot_result

__all__ = ["DEFAULT_LOST_THRESHOLD", "SiamMaskTracker", "TargetState", "TrackResult", "VOTSequenceResult",
           "get_subwindow_tracking", "run_vot_sequence", "select_anchor", "vot_result_path", "write_vot_result"]
