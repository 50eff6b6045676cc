"""The training engine shared by every trainable model (encoders, pair models): steps, schedule,
clipping, checkpoints with exact resume. Modules import torch on use, so importing this is light."""
