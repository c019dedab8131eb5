"""The neural core (torch): VGG-19 and its weights, the baseline and normalized losses, one
transfer problem and the L-BFGS/Adam loop that solves a batch of them."""
