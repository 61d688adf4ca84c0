"""Measuring quality on labeled data, with the definitions of sentence-transformers' evaluators.

Pairs (`question1, question2, is_duplicate`) as `BinaryClassificationEvaluator` (`pairs`); gold clusters
(`question, cluster`) as `InformationRetrievalEvaluator` (`retrieval`: each question retrieves the others,
itself excluded) and `ParaphraseMiningEvaluator` (`mining`: ranked top-k candidates against every pair
inside a cluster). `labeled` reads the data, `curve` ranks scores against labels, `plots` draws them.
"""
