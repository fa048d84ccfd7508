"""DQN-GAN Lab: `python app.py` serves the interactive app on http://127.0.0.1:7860 (also the Hugging Face Space
entry point). All UI code lives in dqngan/ui; this file only composes and launches.

Environment: DQNGAN_MAX_TRAINERS (concurrent training runs; default 1 on CPU, 2 on a GPU), DQNGAN_MAX_RUNS (models
held in memory, default 4), DQNGAN_STATE_SESSIONS (Gradio sessions kept in memory, default 100), DQNGAN_PRESET
(fresh-model preset), DQNGAN_THREADS (torch CPU threads; default 1),
DQNGAN_RUNNER=process|thread (where a run trains: a child process, out of the server's GIL, the default on a CPU;
or a thread of the server, the default with CUDA),
DQNGAN_HUB_ENV_TOKEN=1 (let visitors of a public Space push with its HF_TOKEN), GRADIO_SERVER_NAME / _PORT.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: see dqngan.ui.demo.configure_threads
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from dqngan.ui import build_demo, launch_kwargs  # noqa: E402

demo = build_demo()
# ZeroGPU forces max_size=1 when left unset; an explicit bound keeps several viewers' polls queueing.
demo.queue(max_size=64, default_concurrency_limit=2)

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
