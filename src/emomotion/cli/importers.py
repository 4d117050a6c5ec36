"""``emomotion import``: official MDM, MMM and T2M-evaluator checkpoints as emomotion checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emomotion.cli import checks

import_app = typer.Typer(help="Import official checkpoints as emomotion checkpoints.", no_args_is_help=True)


@import_app.command("mdm")
def import_mdm_cmd(
    model: Annotated[Path, typer.Argument(help="Official model*.pt (flat or {'model','model_avg'}).")],
    out: Annotated[Path, typer.Option("--out", help="Output .safetensors checkpoint.")],
    stats: Annotated[Path, typer.Option("--stats", help="Folder with the HumanML3D Mean.npy / Std.npy.")],
    args: Annotated[
        Path | None, typer.Option("--args", help="args.json (default: beside the model).")
    ] = None,
    text_encoder_path: Annotated[
        Path | None, typer.Option("--text-encoder-path", help="Local CLIP / DistilBERT folder.")
    ] = None,
    no_ema: Annotated[bool, typer.Option("--no-ema", help="Take 'model', not 'model_avg'.")] = False,
) -> None:
    """Import an official MDM checkpoint (trans_enc / trans_dec, CLIP or DistilBERT)."""
    checks.existing("MODEL", model, kind="file")
    checks.existing("--stats", stats, kind="folder")
    checks.existing("--args", args, kind="file")
    checks.existing("--text-encoder-path", text_encoder_path)
    from emomotion.importers.mdm import import_mdm

    typer.echo(
        str(
            import_mdm(
                model,
                out,
                stats=stats,
                args_path=args,
                text_encoder_path=str(text_encoder_path) if text_encoder_path else None,
                use_ema=not no_ema,
            )
        )
    )


@import_app.command("mmm")
def import_mmm_cmd(
    vq: Annotated[Path, typer.Option("--vq", help="Official VQ net_last.pth ({'net': ...}).")],
    trans: Annotated[
        Path, typer.Option("--trans", help="Official transformer net_last.pth ({'trans': ...}).")
    ],
    stats: Annotated[Path, typer.Option("--stats", help="Folder with the HumanML3D Mean.npy / Std.npy.")],
    out: Annotated[Path, typer.Option("--out", help="Output .safetensors checkpoint.")],
    text_encoder_path: Annotated[
        Path | None, typer.Option("--text-encoder-path", help="CLIP folder or OpenAI ViT-B-32.pt.")
    ] = None,
    num_heads: Annotated[
        int, typer.Option("--num-heads", help="Transformer heads (not in the weights).")
    ] = 16,
) -> None:
    """Import official MMM weights. The VQ is taken from --vq; the copy inside --trans is only compared."""
    checks.existing("--vq", vq, kind="file")
    checks.existing("--trans", trans, kind="file")
    checks.existing("--stats", stats, kind="folder")
    checks.existing("--text-encoder-path", text_encoder_path)
    checks.at_least("--num-heads", num_heads, 1)
    from emomotion.importers.mmm import import_mmm

    typer.echo(
        str(
            import_mmm(
                vq,
                trans,
                out,
                stats=stats,
                text_encoder_path=str(text_encoder_path) if text_encoder_path else None,
                num_heads=num_heads,
            )
        )
    )


@import_app.command("t2m-evaluator")
def import_t2m_evaluator_cmd(
    model: Annotated[
        Path, typer.Argument(help="finest.tar, or a folder holding t2m/text_mot_match/model/finest.tar.")
    ],
    glove: Annotated[
        Path, typer.Option("--glove", help="Folder with our_vab_data.npy, _words.pkl, _idx.pkl.")
    ],
    mean: Annotated[Path, typer.Option("--mean", help="The evaluator's mean (t2m_mean.npy).")],
    std: Annotated[Path, typer.Option("--std", help="The evaluator's std (t2m_std.npy).")],
    out: Annotated[Path, typer.Option("--out", help="Output .safetensors checkpoint.")],
) -> None:
    """Import the official T2M evaluator (text_mot_match) with its GloVe vocabulary."""
    checks.existing("MODEL", model)
    checks.existing("--glove", glove, kind="folder")
    checks.existing("--mean", mean, kind="file")
    checks.existing("--std", std, kind="file")
    from emomotion.importers.t2m_evaluator import import_t2m_evaluator

    typer.echo(str(import_t2m_evaluator(model, glove, out, mean=mean, std=std)))
