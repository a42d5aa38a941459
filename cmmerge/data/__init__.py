"""Data: loaders, cleaning, preparation of task and transfer splits, the CPT corpus and the data registry."""
