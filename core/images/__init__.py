"""Image-model tuning: LoRA on a text-to-image diffusers pipeline (Stable Diffusion 1.x/2.x, SDXL), a style
learned as a phrase or a subject placed in new scenes, on the job road like every other tuning.

  config    ImageTuneConfig (style or subject, trigger phrase, prior preservation, steps, rank …) and the
            prompts made from the trigger phrase
  files     the training images' check (unreadable, repeated, near-duplicate, too small; 5–30) and uploads
  models    the pipelines on this machine (workspace models/, Hugging Face cache) and names of them
  trial     a speed trial's projection of a whole run, and the trial that matches a run's settings
  tune      the training job: noise-prediction loss on the UNet's LoRA, samples, standard LoRA weights
  generate  loading a pipeline (with LoRA weights or without), images, the base-vs-tuned compare grid
  scores    CLIP subject fidelity and prompt alignment of the grid, where a CLIP model is found
  tiny      a tiny random pipeline built from configs (tests, trying the road without a real model)

config, files, models and trial load without torch (the page imports them); the others load diffusers
when they run."""
