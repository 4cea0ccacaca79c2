"""The batch recommender: item–item co-occurrence trained from stored interactions, exported as arrays.

data (sources: a DuckDB `interactions` table, CSV/Parquet/NDJSON, or MovieLens that ships in a package),
synthetic (seeded interactions with taste clusters, for tests and benchmarks), cooccurrence (fit → arrays),
evaluate (temporal split, recall@k / NDCG@k against most-popular), publish (registry entry).
Scoring itself is `engine.serve.recommend.Scorer`: the server and the evaluation run the same code.
"""

from models.recommender.cooccurrence import FitConfig, fit
from models.recommender.data import InteractionLog, load_interactions
from models.recommender.evaluate import EvalReport, evaluate, temporal_split
from models.recommender.publish import TrainedRecommender, train_recommender

__all__ = [
    "EvalReport",
    "FitConfig",
    "InteractionLog",
    "TrainedRecommender",
    "evaluate",
    "fit",
    "load_interactions",
    "temporal_split",
    "train_recommender",
]
