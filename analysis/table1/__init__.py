"""The paper's Table 1: its layout, column labels, figures, the published table's audit and synthetic data."""
