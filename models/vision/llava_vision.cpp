// placeholder: written by the llava vision work (F3)
