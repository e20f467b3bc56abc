"""Task heads. Segmentation and classification heads are ``nn.Module`` s over pyramid levels;
detection heads are torchvision detectors whose ``backbone`` is the model's backbone + neck.

Head options are checked against :data:`rsfm.config.HEAD_OPTIONS`
(:func:`rsfm.modelcheck.check_head_kwargs`, torch-free, so ``rsfm check`` reads the same table;
a test keeps it equal to the head classes' keyword arguments).
"""
