"""Export: a finished run (or one of its checkpoints) taken home as a file another program loads.

  adapter  the PEFT adapter folder, zipped, with a model card          (core.export.files)
  merged   base + adapter merged into a safetensors folder, with a chat template that carries the
           run's prompt template                                      (core.export.merge)
  gguf     the merged weights as GGUF (f16, q8_0 and more), for llama.cpp and Ollama, optionally with an
           Ollama Modelfile                                           (core.export.gguf_file, .ollama)

Each export is a job (kind `export`) in runs/<id>/exports/<label>/ and ends with a verification: the
artifact is loaded by a second implementation and asked a few eval prompts greedily; its answers are
compared with the studio's own (core.export.verify). Only core.export.config and .listing are imported by
the UI; everything else loads torch."""
