"""A plain scikit-learn script: read a CSV, split, scale, fit an MLP with early stopping, score the test rows.

The reference that iris_process.py times `bptrain fit` against; it does the same job by hand:

    python benchmarks/sklearn_fit.py datasets/iris.csv species --val 0.15 --test 0.15 --stratify \\
        --layers 16 16 --batch-size 16 --lr 0.01 --max-epochs 300 --patience 30 --seed 42

Numeric columns get the median for a missing value and are standardized; text columns (and those
named by --categorical) get the most frequent value and are one-hot encoded. scikit-learn keeps
--val of all rows aside from the training rows and stops when its score on them (accuracy, or R²)
has not improved for --patience epochs. Prints one line: the test score and the epochs run.
Needs scikit-learn (pip install scikit-learn), which bptrain never depends on.
"""

import argparse

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("target")
    parser.add_argument("--regression", action="store_true", help="a numeric target to predict (default: classes)")
    parser.add_argument("--val", type=float, default=0.15, help="fraction of all rows for early stopping")
    parser.add_argument("--test", type=float, default=0.15, help="fraction of all rows scored at the end")
    parser.add_argument("--stratify", action="store_true", help="keep the class balance in the test rows")
    parser.add_argument("--categorical", nargs="*", default=[], help="numeric columns to one-hot encode")
    parser.add_argument("--layers", type=int, nargs="+", default=[16], help="hidden units per layer")
    parser.add_argument("--activation", default="relu", choices=["relu", "tanh", "logistic", "identity"])
    parser.add_argument("--solver", default="adam", choices=["adam", "sgd"])
    parser.add_argument("--momentum", type=float, default=0.0, help="sgd only")
    parser.add_argument("--nesterov", action="store_true", help="sgd only")
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def preprocessor(features: pd.DataFrame, categorical: list[str]) -> ColumnTransformer:
    text = [c for c in features.columns if c in categorical or not pd.api.types.is_numeric_dtype(features[c])]
    numeric = [c for c in features.columns if c not in text]
    return ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), text),
    ])


def main():
    args = parse_args()
    frame = pd.read_csv(args.csv).dropna(subset=[args.target])
    x, y = frame.drop(columns=[args.target]), frame[args.target]
    stratify = y if args.stratify and not args.regression else None
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=args.test, stratify=stratify, random_state=args.seed)
    mlp = (MLPRegressor if args.regression else MLPClassifier)(
        hidden_layer_sizes=tuple(args.layers),
        activation=args.activation,
        solver=args.solver,
        momentum=args.momentum,
        nesterovs_momentum=args.nesterov,
        alpha=0.0,
        batch_size=args.batch_size,
        learning_rate_init=args.lr,
        max_iter=args.max_epochs,
        early_stopping=True,
        validation_fraction=args.val / (1.0 - args.test),  # of the rows left after the test rows
        n_iter_no_change=args.patience,
        tol=0.0,
        random_state=args.seed,
    )
    model = make_pipeline(preprocessor(x, args.categorical), mlp).fit(x_rest, y_rest)
    metric = "r2" if args.regression else "accuracy"
    print(f"test {metric} {model.score(x_test, y_test):.4f} after {mlp.n_iter_} epochs")


if __name__ == "__main__":
    main()
