"""Formats and names that one part writes and another reads, each defined once.

``classes`` (the class names and ids), ``staged_data`` (the staged splits and the ``.lst``
format), ``container`` (paths inside the SageMaker containers) and ``capture`` (the data-capture
record). Standard library only: the Processing jobs import these from the code bundle, in a
container that has none of this project's dependencies. The Lambdas ship alone and keep their
own copies, which tests hold equal to these.
"""
