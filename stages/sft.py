"""sft: fine-tune the pretrained model on instruction data, loss on assistant tokens only.

With sft.lora.enabled, only low-rank adapters are trained and then merged into the weights, so
models/sft is always a plain model in the same format as models/pretrain: the best-by-val model,
with the last step's in models/sft/final. The frame (attention, resumable state, outputs,
figures, summary line) is lib/train/scaffold.py's.
"""
import sys
from pathlib import Path

from lib.core.params import load_section, load_seed
from lib.core.runtime import setup_torch
from lib.core.stage import run_stage
from lib.eval.validation import mean_loss
from lib.infer.replies import replies
from lib.model.checkpoint import load_model
from lib.model.lora import apply_lora, lora_parameter_count, merge_lora, merged_weights
from lib.data.shards import file_sha256
from lib.tokenizer import Tokenizer
from lib.train.params import RunPlan
from lib.train.scaffold import TrainingRun
from lib.data.sft import EpochBatches, load_examples
from lib.train.sft import SFTParams

PRETRAINED = Path("models/pretrain")


def main() -> None:
    params, seed = load_section("sft", SFTParams), load_seed()
    device = setup_torch(params.device, params.threads, seed)
    tokenizer = Tokenizer.load("models/tokenizer")
    model = load_model(PRETRAINED, device, tokenizer.sha256)
    with TrainingRun("sft", model, tokenizer, params, seed) as run:
        data = Path(params.data)
        train_set, val_set, stats = load_examples(data, tokenizer, min(params.max_len, model.cfg.max_seq_len),
                                                  params.val_fraction, params.truncate, params.on_bad_record)
        for problem in stats.pop("bad_examples"):  # prose: to the log, the count stays in the figures
            print(f"sft: skipped {problem}", file=sys.stderr)
        lora = {"enabled": False}
        if params.lora.enabled:
            wrapped = apply_lora(model, params.lora)
            trainable, total = lora_parameter_count(model)
            lora = {"enabled": True, "modules": len(wrapped), "trainable_params": trainable, "total_params": total}
        batches = EpochBatches(train_set, params.batch_size, seed, tokenizer.pad_id)
        val_batches = EpochBatches(val_set, params.batch_size, seed, tokenizer.pad_id)
        held_out = [val_set[0].messages[:2] if val_set[0].messages[0].role == "system" else val_set[0].messages[:1]]

        def evaluate() -> float:
            return mean_loss(model, val_batches.all_batches(), device)

        def sample(step: int) -> dict[str, str]:
            return replies(model, tokenizer, held_out, params.sample_tokens)

        plan = RunPlan(batches.steps(params.epochs))
        result = run.train(plan, device, batches.batch, evaluate, sample,
                           inputs=[file_sha256(PRETRAINED / "model.safetensors"), file_sha256(data)])
        best, final = (merged_weights(model.cfg, s, params.lora) for s in (result.best_model, model.state_dict()))
        if params.lora.enabled:
            merge_lora(model)
        model.load_state_dict(best)  # the sample below is the saved model's
        before = result.val_curve[0][2]
        run.save(result, best, final, sample(result.last_step),
                 {**stats, "lora": lora, "val_loss_before": round(before, 4)}, f"(from {before:.4f})", throughput=False)


if __name__ == "__main__":
    run_stage(main)
