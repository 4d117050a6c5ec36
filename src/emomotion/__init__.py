"""emomotion: emotionally expressive text-to-motion.

Layers, lowest first. A module imports only from its own unit (a top-level module or subpackage)
and from units on lower lines; units on one line are peers and never import each other. No import
cycles, not even inside a unit. ``tests/test_layers.py`` reads this list and checks every import of
the package (function-level ones included) against it.

.. code-block:: text

    emomotion, errors, configs, progress, geometry, skeleton, limits
    io, text, threads, rigs
    joint_maps
    features, retarget
    data, render, export
    models
    checkpoint, sampling, token_cache
    generate, importers, convert
    restyle
    training, evaluation
    study, app
    demo
    cli

Data flows upwards: mocap (``io``, ``retarget``) becomes features and datasets (``features``,
``data``); networks (``models``) know no datasets or files and are saved and rebuilt by ``checkpoint``
(its model registry is :mod:`emomotion.models.registry`); samplers take a network as an argument;
``training`` and ``evaluation`` use all of these and not each other; ``study``, ``app``, ``demo`` and
``cli`` put them together.
"""

__version__ = "0.1.0"
