"""Imports: image folders, Galaxy10 HDF5 files, Galaxy Zoo example sets and published vote catalogues in, Galaxy
rows, image files, thumbnails, labels and vote summaries written, all or nothing, with bad rows named."""
