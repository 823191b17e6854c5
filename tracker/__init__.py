"""SiamMask tracker (per-target state, batched multi-target tracking), its construction and the VOT reset protocol."""
from .build import build_tracker, load_model
from .crops import crops_to_tensor, get_subwindow_tracking
from .siammask_tracker import DEFAULT_LOST_THRESHOLD, SiamMaskTracker
from .siamrpn import AnchorPick, SearchGeometry, search_geometry, select_anchor
from .state import STATE_VERSION, TargetState, TrackerStateError, TrackResult, init_result, state_fingerprint
from .vot import VOTSequenceResult, run_vot_sequence, vot_result_path, write_vot_result

__all__ = ["DEFAULT_LOST_THRESHOLD", "STATE_VERSION", "AnchorPick", "SearchGeometry", "SiamMaskTracker",
           "TargetState", "TrackResult", "TrackerStateError", "VOTSequenceResult", "build_tracker", "crops_to_tensor",
           "get_subwindow_tracking", "init_result", "load_model", "run_vot_sequence", "search_geometry",
           "select_anchor", "state_fingerprint", "vot_result_path", "write_vot_result"]
