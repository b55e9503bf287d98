"""The maths of each method as small pure functions: tensors and arrays in, tensors and arrays out.

One module per method, its functions named as in its paper (``alpha``, ``beta``, ``radius``, ``t``);
no argument parsing, no files, no HDF5. Stages pick what they run from here.
"""
