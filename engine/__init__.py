"""The engine, in three wings: ``study`` (the torch-free study model every stage reads),
``neural`` (VGG-19, the paper's two losses, L-BFGS transfer; torch) and ``produce`` (stimulus
production on top of it: generate, figures, claims, bench, inspect)."""
