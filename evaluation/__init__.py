"""VOT evaluation: dataset metadata, accuracy/robustness and EAO with pysot-toolkit's numbers.

Joined to tracking only by the result files ``<result_dir>/<tracker>/baseline/<video>/<video>_001.txt``
(reference.md E.5); imports nothing from ``models``, ``tracker`` or torch.

    from . import load_vot_dataset, evaluate_trackers, list_trackers
    dataset = load_vot_dataset("VOT2018", "data")
    evals = evaluate_trackers(dataset, "results/VOT2018", list_trackers("results/VOT2018"))
"""
from .ar import BURNIN, ARResult, eval_accuracy_robustness, failure_frames, trajectory_overlaps
from .benchmark import TrackerEvaluation, evaluate_tracker, evaluate_trackers
from .eao import EAO_INTERVALS, SKIPPING, EAOResult, eao_interval, eval_eao, expected_overlap_curve
from .errors import BenchmarkError, EvaluationError, ResultError
from .results import list_trackers, load_tracker_trajectories, load_trajectory, trajectory_files
from .vot import VOT_ATTRIBUTES, VOT_DATASETS, VOT_TAGS, VOTDataset, VOTVideo, find_dataset_json, load_vot_dataset

__all__ = [
    "BURNIN", "SKIPPING", "EAO_INTERVALS", "VOT_ATTRIBUTES", "VOT_DATASETS", "VOT_TAGS",
    "ARResult", "EAOResult", "TrackerEvaluation", "VOTDataset", "VOTVideo",
    "EvaluationError", "BenchmarkError", "ResultError",
    "load_vot_dataset", "find_dataset_json", "list_trackers", "trajectory_files", "load_trajectory",
    "load_tracker_trajectories", "failure_frames", "trajectory_overlaps", "eval_accuracy_robustness", "eval_eao",
    "eao_interval", "expected_overlap_curve", "evaluate_tracker", "evaluate_trackers",
]
