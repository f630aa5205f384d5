"""Generative models: WaveNet, flows, VQ-VAEs and transformer priors."""
