"""Training the segmentation network: model, data, loss, loop and checkpoints (stage ``train``)."""
