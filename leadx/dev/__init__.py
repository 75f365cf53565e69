"""Running and exercising the exchange on one machine: the local process stack, the demo, the
market simulator and the build tools (proto generation, manifest checks, the prior model)."""
