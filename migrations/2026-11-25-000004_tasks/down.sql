DROP TABLE tasks;
DROP TABLE programs;
