"""Custom Labels and adapter projects and their datasets.

Owns the project commands, their appliers (a name is taken once, the project limit, a
project with versions cannot be deleted) and the service the API calls; beside them the
datasets' (``datasets``: the types; ``manifests``: a Ground Truth line read into an entry;
``dataset_commands``, ``dataset_rules``, ``dataset_service``) and the versions'
(``versions``: types and status moves; ``version_spec`` and ``version_result``: typed
views of what a version asked and what its training produced; ``versions_commands``,
``versions_rules``, ``versions_service`` and ``versions_requests``: its checks;
``versions_inputs``, ``versions_encoding``, ``versions_training`` and ``versions_outputs``:
one training, run by the daemon's training runner). Layer: a domain package beside
collections, processors, jobs and tags (imports none of them); imports the data plane's
manifest syntax, moderation (taxonomy, the feature extractor's types), storage,
rekognition, training and below.
"""
