// placeholder: written by the qwen vision work (F3)
