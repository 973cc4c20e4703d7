"""Handing a batch of evaluations to a cluster: Slurm job arrays (`slurm`). The judging itself is
the ordinary one (`harness.judge`), run on the cluster's nodes; this package only submits the
tasks, tells how far they are, and records what a cluster stopped."""
