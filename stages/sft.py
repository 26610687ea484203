"""sft: fine-tune the pretrained model on instruction data, loss on assistant tokens only.

With sft.lora.enabled, only low-rank adapters are trained and then merged into the weights, so
models/sft is always a plain model in the same format as models/pretrain: the best-by-val model,
with the last step's in models/sft/final.
"""
import sys
from pathlib import Path

from lib.attention import load_attention_params, wrap_for_external
from lib.core.io import write_json
from lib.core.params import load_section, load_seed
from lib.core.runtime import setup_torch
from lib.core.stage import run_stage
from lib.eval.validation import mean_loss
from lib.infer.replies import replies
from lib.model.checkpoint import load_model, save_best_and_final
from lib.model.lora import apply_lora, lora_parameter_count, merge_lora, merged_weights
from lib.data.shards import file_sha256
from lib.tokenizer import Tokenizer
from lib.train.loop import finish, train
from lib.train.params import RunPlan
from lib.data.sft import EpochBatches, load_examples
from lib.train.sft import SFTParams
from lib.train.curves import write_curves
from lib.train.state import run_key, run_metrics

PRETRAINED = Path("models/pretrain")
OUT = Path("models/sft")
STATE = Path("checkpoints/sft/state.pt")  # resumable state: git-ignored, not a DVC output
PLOTS = Path("metrics/plots/sft")
SAMPLES = Path("models/samples/sft.json")  # prose stays out of metrics: a cached output


def main() -> None:
    params, seed = load_section("sft", SFTParams), load_seed()
    device = setup_torch(params.device, params.threads, seed)
    tokenizer = Tokenizer.load("models/tokenizer")
    model = load_model(PRETRAINED, device, tokenizer.sha256)
    config = model.cfg
    attention = load_attention_params()
    attn = wrap_for_external(model, attention, tokenizer, output_dir=OUT)  # learned mode: a no-op
    max_len = min(params.max_len, model.cfg.max_seq_len)
    data = Path(params.data)
    train_set, val_set, stats = load_examples(data, tokenizer, max_len, params.val_fraction,
                                              params.truncate, params.on_bad_record)
    for problem in stats.pop("bad_examples"):  # prose: to the log, the count stays in the metrics
        print(f"sft: skipped {problem}", file=sys.stderr)
    lora = {"enabled": False}
    if params.lora.enabled:
        wrapped = apply_lora(model, params.lora)
        trainable, total = lora_parameter_count(model)
        lora = {"enabled": True, "modules": len(wrapped), "trainable_params": trainable, "total_params": total}

    batches = EpochBatches(train_set, params.batch_size, seed, tokenizer.pad_id)
    val_batches = EpochBatches(val_set, params.batch_size, seed, tokenizer.pad_id)

    def evaluate() -> float:
        return mean_loss(model, val_batches.all_batches(), device)

    held_out = [val_set[0].messages[:2] if val_set[0].messages[0].role == "system" else val_set[0].messages[:1]]

    def sample(step: int) -> dict[str, str]:
        return replies(model, tokenizer, held_out, params.sample_tokens)

    steps = batches.steps(params.epochs)
    key = run_key(params, seed, tokenizer.sha256, file_sha256(PRETRAINED / "model.safetensors"), file_sha256(data),
                  *([f"attention={attention.key()}"] if attention.mode == "external" else []))
    result = train(model, params, RunPlan(steps), device, batches.batch, evaluate, STATE, key, "sft", sample=sample)

    best, final = (merged_weights(config, state, params.lora) for state in (result.best_model, model.state_dict()))
    if params.lora.enabled:
        merge_lora(model)
    model.load_state_dict(best)  # the sample below is the saved model's
    save_best_and_final(OUT, config, best, final, tokenizer.sha256,
                        {"stage": "sft", "best_step": result.best_step, "last_step": result.last_step,
                         "attention": attention.info()})
    write_curves(PLOTS, result, throughput=False)
    write_json("metrics/sft.json", {**stats, **run_metrics(result, steps), "lora": lora,
                                    "val_loss_before": round(result.val_curve[0][2], 4), **attn.metrics()})
    write_json(SAMPLES, sample(result.last_step))
    print(f"sft: {steps} steps, best val loss {result.best_val_loss:.4f} at step {result.best_step} "
          f"(from {result.val_curve[0][2]:.4f}); model in {OUT}, samples in {SAMPLES} ({result.seconds:.0f} s)")
    finish(STATE)  # outputs are whole: the state has served its purpose


if __name__ == "__main__":
    run_stage(main)
