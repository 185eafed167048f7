"""Inside a large language model, for lesson 14 (``notebooks/14_llm1_tokens_positions_attention.ipynb`` and
``notebooks/14_llm2_decoding_moe_stability.ipynb``), on the kit's TinyGPT and the standard-library corpus.

* ``bpe``: byte-level BPE from scratch (``bpe_merges``, ``BPETokenizer``), checked against Hugging Face ``tokenizers``.
* ``lm_data``: token streams of the corpus (characters or BPE ids), bits per byte and perplexity.
* ``positions``: learned, sinusoidal, RoPE (``apply_rope``) and ALiBi positions.
* ``model``: ``LLM`` -- TinyGPT with switches: position scheme, grouped-query attention, a KV cache, QK-norm,
  mixture-of-experts MLPs and z-loss.
* ``kv_cache``: the cache, one decoding step (``attention_step_with_kv_cache``) and its size in bytes.
* ``flash``: attention by an online softmax over key blocks (``online_softmax_attention``) and its memory.
* ``decoding``: greedy, temperature, top-k, top-p (``top_p_filter``), repetition penalty; speculative decoding.
* ``moe``: the top-k router with capacity (``topk_router``), the Switch balancing loss and the MoE layer.
* ``stability``: loss spikes, clipping, z-loss, QK-norm and beta2.
* ``training``: the small training loop the lesson's experiments share.
"""
