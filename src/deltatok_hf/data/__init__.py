"""Video data for DeltaTok / DeltaWorld: decoding, clip sampling, augmentation and datasets.

`datasets`-based loaders (`load_video_dataset`, `VideoClipDataset`) need the `datasets` library
(the `train` extra); it is imported only when they are used.
"""

from .benchmarks import (
    CityscapesWindows,
    KITTIWindows,
    LabelledWindows,
    SyntheticLabelledFrames,
    SyntheticWindows,
    VideoFolderWindows,
    VSPWWindows,
    build_labelled_dataset,
    collate_windows,
)
from .datasets import (
    VIDEO_EXTENSIONS,
    NoUsableVideosError,
    VideoClipDataset,
    collate_clips,
    infer_video_column,
    list_video_files,
    load_video_dataset,
    video_source_from_entry,
    window_frame_times,
)
from .lerobot import (
    LeRobotClipDataset,
    LeRobotLayoutError,
    LeRobotMetadata,
    is_lerobot_dataset,
    load_lerobot_episodes,
    load_lerobot_metadata,
)
from .sampling import (
    ClipSampler,
    RandomResizedCropVideo,
    SampledClip,
    VideoTooShortError,
    center_crop,
    resize_frames,
    resize_short_side,
    split_square_crops,
    square_crop_boxes,
)
from .synthetic import SyntheticMultimodalMotion, render_trajectory
from .video import (
    DecodedVideo,
    VideoDecodeError,
    VideoInfo,
    decode_video,
    demo_clip_path,
    probe_video,
    read_frames_at,
    read_timestamps,
)


__all__ = [
    "CityscapesWindows",
    "KITTIWindows",
    "LabelledWindows",
    "SyntheticLabelledFrames",
    "SyntheticWindows",
    "VSPWWindows",
    "VideoFolderWindows",
    "build_labelled_dataset",
    "collate_windows",
    "VIDEO_EXTENSIONS",
    "LeRobotClipDataset",
    "LeRobotLayoutError",
    "LeRobotMetadata",
    "NoUsableVideosError",
    "is_lerobot_dataset",
    "load_lerobot_episodes",
    "load_lerobot_metadata",
    "window_frame_times",
    "ClipSampler",
    "DecodedVideo",
    "RandomResizedCropVideo",
    "SampledClip",
    "SyntheticMultimodalMotion",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoInfo",
    "VideoTooShortError",
    "center_crop",
    "collate_clips",
    "decode_video",
    "demo_clip_path",
    "infer_video_column",
    "list_video_files",
    "load_video_dataset",
    "probe_video",
    "read_frames_at",
    "read_timestamps",
    "render_trajectory",
    "resize_frames",
    "resize_short_side",
    "split_square_crops",
    "square_crop_boxes",
    "video_source_from_entry",
]
