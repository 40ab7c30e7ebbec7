"""`isr_export_model` / `isr_install_model`: share a trained model (weights, plans, provenance) as one file."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from isrnet.cli.common import run_cli

EXPORT_EPILOG = """examples:
  isr_export_model 001                     latest untagged stage of dataset 001 -> Dataset001_Name__ssft.zip
  isr_export_model 001 ssft --tag scratch -o ~/share/knee_ssft_scratch.zip
  isr_export_model 001 --benchmark 001     also record that dataset's isr_benchmark table in the provenance
  isr_export_model 901 mrft --pretrained isrnet/pretrained --benchmark 001    (maintainers: the shipped weights)
"""

INSTALL_EPILOG = """examples:
  isr_install_model Dataset001_DemoBrain__ssft.zip           -> $isrnet_results/Dataset001_DemoBrain/ssft/
  isr_install_model knee.zip --as Dataset042_KneeT2          when the archive's dataset ID is taken here
then: isr_predict -i scans/ -o sr/ -d 42   (or isr_train 42 ssft -init $isrnet_results/.../checkpoint_final.pth)
"""


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isr_export_model", epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Pack a finished training run (weights without optimizer state, plans.json, provenance: "
                    "command, git commit, data, iterations, time, validation) into one zip file that "
                    "isr_install_model unpacks on another machine.")
    parser.add_argument("dataset", help="1, 001 or Dataset001_Name")
    parser.add_argument("stage", nargs="?", help="video, mrft or ssft (default: the latest stage trained, "
                                                 "as isr_predict -d uses)")
    parser.add_argument("--tag", help="the run variant <stage>__<tag>")
    parser.add_argument("-o", dest="output", help="archive file, or a folder for DatasetXXX_Name__<run>.zip "
                                                  "(default: the current folder)")
    parser.add_argument("--benchmark", metavar="DATASET",
                        help="embed the table isr_benchmark -d DATASET wrote (evidence for colleagues)")
    parser.add_argument("--pretrained", metavar="FOLDER", type=Path,
                        help="instead of an archive, write <stage>.pth + <stage>.json into FOLDER "
                             "(the format of the weights shipped in isrnet/pretrained/)")
    return parser


def export(args: argparse.Namespace) -> None:
    from isrnet.datasets import resolve_dataset
    from isrnet.errors import IsrnetError
    from isrnet.inference.model_resolution import from_dataset
    from isrnet.model_sharing.package import export_model, write_pretrained
    from isrnet.model_sharing.provenance import benchmark_record

    dataset = resolve_dataset(args.dataset)
    if args.tag and not args.stage:
        raise IsrnetError("--tag goes with a stage, e.g. isr_export_model 001 ssft --tag scratch")
    run = f"{args.stage}__{args.tag}" if args.tag else args.stage
    run_folder = from_dataset(dataset, run).checkpoint.parent
    extra = {"evaluation": benchmark_record(resolve_dataset(args.benchmark))} if args.benchmark else {}
    if args.pretrained:
        weights, record = write_pretrained(run_folder, args.pretrained, extra)
        print(f"{weights} ({weights.stat().st_size / 1e6:.2f} MB) and {record}")
        return
    name = f"{dataset}__{run_folder.name}.zip"
    output = Path(args.output or ".")
    if output.is_dir() or (args.output or "").endswith(("/", os.sep)):
        output = output / name
    export_model(run_folder, output, extra)
    print(f"{dataset}/{run_folder.name} -> {output} ({output.stat().st_size / 1e6:.2f} MB); "
          f"install elsewhere with: isr_install_model {output.name}")


def build_install_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isr_install_model", epilog=INSTALL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Install a model archive written by isr_export_model into $isrnet_results, where "
                    "isr_predict -d and isr_train -init find it. The archive is checked completely (format, "
                    "checksums, weights that fit its plans) before anything is written.")
    parser.add_argument("archive", type=Path, help="the .zip written by isr_export_model")
    parser.add_argument("--as", dest="dataset", metavar="DatasetXXX_Name",
                        help="install under this dataset name instead of the archive's")
    parser.add_argument("--overwrite", action="store_true", help="replace an installed run of the same name")
    return parser


def install(args: argparse.Namespace) -> None:
    from isrnet.datasets import dataset_id
    from isrnet.model_sharing.package import install_model
    from isrnet.utilities.files import load_json

    target = install_model(args.archive, args.dataset, args.overwrite)
    provenance = load_json(target / "provenance.json")
    final = provenance.get("validation", {}).get("final", {})
    print(f"installed {target}", file=sys.stderr)
    print(f"  trained with: {provenance.get('command')} (git {provenance.get('git_commit')}), "
          f"{provenance.get('iterations')} iterations in {provenance.get('wall_time_minutes')} min"
          + (f", validation {final['psnr']:.2f} dB ({final['gain_vs_cubic']:+.2f} dB vs cubic)" if final else ""),
          file=sys.stderr)
    print(f"  use it with: isr_predict -i IN -o OUT -d {dataset_id(target.parent.name):03d} --stage {target.name}",
          file=sys.stderr)


def main_export() -> None:
    parser = build_export_parser()
    args = parser.parse_args()
    run_cli(parser.prog, lambda: export(args))


def main_install() -> None:
    parser = build_install_parser()
    args = parser.parse_args()
    run_cli(parser.prog, lambda: install(args))
