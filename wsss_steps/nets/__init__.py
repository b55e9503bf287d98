"""Networks, one module per network with one builder each: backbones, the CAM classifier, AffinityNet and
DeepLabV3. ``trainable_parameters()`` of each network names its backbone and its new layers (new layers train at
10x the learning rate)."""
