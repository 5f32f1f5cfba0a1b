"""Reading whole models to measure them: scans, hashes, fingerprints, comparisons, audits, the VAE test."""
