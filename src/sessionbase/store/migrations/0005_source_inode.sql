-- sessionbase schema 5: find a moved file's source by inode without scanning every source.
CREATE INDEX sources_by_inode ON sources (dev, inode);
