"""VGG-19 features, the paper's two losses, L-BFGS transfer and stimulus generation."""
