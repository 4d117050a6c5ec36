"""Limits on a generation request, shared by the command line, the library and the web demo, and on
training settings, shared by the command line, the training loop and study configs.

Each limit lives here once; the demo's page may only lower them (see ``emomotion.app.config``).
"""

MAX_PROMPT_CHARS = 300
"""Characters per prompt (CLIP reads at most 77 tokens, about this many characters)."""
MAX_GUIDANCE = 20.0
"""Classifier-free guidance scale (MDM uses 2.5, MMM about 4; far larger only ruins the motion)."""
MAX_SAMPLES = 64
"""Samples per prompt in one request."""
MAX_LENGTH_BUCKETS = 10_000
"""Batches per length-sorted run (``--length-buckets``, emomotion.training.sampler)."""
