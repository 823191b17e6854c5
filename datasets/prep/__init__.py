"""Dataset preparation (crop511 images + annotation json) for YouTube-VOS, COCO, ImageNet DET/VID, and VOT json.

The scripts under `data/<dataset>/` are thin command lines over these modules; the crop geometry itself is in
:mod:`datasets.crop`.
"""
